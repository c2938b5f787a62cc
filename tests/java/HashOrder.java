import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The iteration order of Java's hash sets, for tests/test_multiple_addresses.py. Each stdin line is a kind and
 * space-separated items; the program prints the items in the order the set iterates them.
 *   addr host,port ...   a ConcurrentHashMap key set of InetSocketAddress (what MultipleAddresses keeps)
 *   long-chm n ...       a ConcurrentHashMap key set of Long (e.g. SessionTrackerImpl.sessionsById)
 *   long-hash n ...      a HashSet of Long
 */
public class HashOrder {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        String line;
        while ((line = in.readLine()) != null) {
            String[] words = line.split(" ");
            List<String> out = new ArrayList<>();
            if (words[0].equals("addr")) {
                Set<InetSocketAddress> set = ConcurrentHashMap.newKeySet();
                for (int i = 1; i < words.length; i++) {
                    int comma = words[i].lastIndexOf(',');
                    set.add(new InetSocketAddress(words[i].substring(0, comma),
                                                  Integer.parseInt(words[i].substring(comma + 1))));
                }
                for (InetSocketAddress a : set) {
                    out.add(a.getHostString() + "," + a.getPort());
                }
            } else {
                Set<Long> set = words[0].equals("long-chm") ? ConcurrentHashMap.newKeySet() : new HashSet<>();
                for (int i = 1; i < words.length; i++) {
                    set.add(Long.parseLong(words[i]));
                }
                for (Long v : set) {
                    out.add(Long.toString(v));
                }
            }
            System.out.println(String.join(" ", out));
        }
    }
}
