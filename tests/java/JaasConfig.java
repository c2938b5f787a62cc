// Prints how the JDK's javax.security.auth.login.Configuration reads each JAAS file named on the command line:
// "ENTRY <module> <flag> <options, sorted>" per entry of the section (args[0]), "NONE" when the section is
// missing, or "ERROR <message>" of the exception. Used by tests/test_sasl.py (run as `java JaasConfig.java ...`).
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.Configuration;
import java.io.File;
import java.security.URIParameter;
import java.util.TreeMap;

public class JaasConfig {
    public static void main(String[] args) throws Exception {
        for (int i = 1; i < args.length; i++) {
            StringBuilder out = new StringBuilder(new File(args[i]).getName()).append(' ');
            try {
                Configuration c = Configuration.getInstance("JavaLoginConfig",
                                                            new URIParameter(new File(args[i]).toURI()));
                AppConfigurationEntry[] entries = c.getAppConfigurationEntry(args[0]);
                if (entries == null) {
                    out.append("NONE");
                } else {
                    for (AppConfigurationEntry e : entries) {
                        out.append("ENTRY ").append(e.getLoginModuleName()).append(' ')
                           .append(e.getControlFlag().toString().replace("LoginModuleControlFlag: ", "").toUpperCase())
                           .append(' ').append(new TreeMap<>(e.getOptions())).append(';');
                    }
                }
            } catch (Exception e) {
                Throwable t = e;
                while (t.getCause() != null) t = t.getCause();
                out.append("ERROR ").append(t.getMessage());
            }
            // one line per file, whatever the values hold
            System.out.println(out.toString().replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
                               .replace("\t", "\\t").replace("\u0085", "\\x85").replace("\u2028", "\\u2028")
                               .replace("\u2029", "\\u2029"));
        }
    }
}
