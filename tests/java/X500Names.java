// Reads DER-encoded X.500 Names, one per line in hex, and prints what Java's X500Principal.getName() (RFC 2253)
// makes of each, or "!" and the exception's class when Java refuses the bytes. Run: java X500Names.java < names.hex
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import javax.security.auth.x500.X500Principal;

public class X500Names {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            try {
                String name = new X500Principal(HexFormat.of().parseHex(line.trim())).getName();
                out.append(HexFormat.of().formatHex(name.getBytes(StandardCharsets.UTF_8)));
            } catch (Exception e) {
                out.append("!").append(e.getClass().getName());
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
