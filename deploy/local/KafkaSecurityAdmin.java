// The operator's Kafka Admin API calls, in one JVM (run as a single-file source program by
// deploy/local/security.py: `java -cp '<libs>/*' KafkaSecurityAdmin.java <cmd> <client.properties>`).
// AclCommand would need one JVM per resource pattern; this takes every binding at once.
//   acls:  stdin lines `User:<name>\t<RESOURCE>\t<PATTERN>\t<name>\t<OPERATION>` -> ALLOW bindings
//   scram: stdin lines `<user>\t<password>` -> SCRAM-SHA-512 credentials created or replaced
import java.io.BufferedReader;
import java.io.FileReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class KafkaSecurityAdmin {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileReader config = new FileReader(args[1])) {
            props.load(config);
        }
        List<String[]> rows = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null; ) {
            if (!line.isBlank()) rows.add(line.split("\t"));
        }
        try (Admin admin = Admin.create(props)) {
            if (args[0].equals("acls")) {
                List<AclBinding> bindings = new ArrayList<>();
                for (String[] r : rows) {
                    bindings.add(new AclBinding(
                        new ResourcePattern(ResourceType.valueOf(r[1]), r[3], PatternType.valueOf(r[2])),
                        new AccessControlEntry(r[0], "*", AclOperation.valueOf(r[4]), AclPermissionType.ALLOW)));
                }
                admin.createAcls(bindings).all().get();
                System.out.println("acls " + bindings.size());
            } else if (args[0].equals("scram")) {
                List<UserScramCredentialAlteration> changes = new ArrayList<>();
                for (String[] r : rows) {
                    changes.add(new UserScramCredentialUpsertion(
                        r[0], new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), r[1]));
                }
                admin.alterUserScramCredentials(changes).all().get();
                System.out.println("scram " + changes.size());
            } else {
                throw new IllegalArgumentException("unknown command " + args[0]);
            }
        }
    }
}
