"""Checks what cfn-lint cannot: the template's function URLs, build settings and policies.

cfn-lint validates the schema but accepts any InvokeMode value; a streaming function
behind a BUFFERED URL would deploy and then fail. Run with the venv's python (cfn-lint
brings the YAML decoder that understands !Ref and !GetAtt).
"""

import json
import sys

from cfnlint.decode import decode

template, errors = decode(sys.argv[1] if len(sys.argv) > 1 else "template.yml")
if errors:
    sys.exit(f"template does not parse: {errors}")

resources = template["Resources"]
problems = []


def expect(what, actual, wanted):
    if actual != wanted:
        problems.append(f"{what}: expected {wanted!r}, found {actual!r}")


# The deployed table must match seed-data/table.json, which the seeder and tests create.
with open("seed-data/table.json", encoding="utf-8") as f:
    shared = json.load(f)
table = resources["Table"]["Properties"]
for field in ("AttributeDefinitions", "KeySchema", "BillingMode"):
    expect(f"table {field} (vs seed-data/table.json)", table[field], shared[field])

glob = template["Globals"]["Function"]
expect("runtime", glob["Runtime"], "provided.al2023")
expect("architectures", glob["Architectures"], [{"Ref": "Architecture"}])
architecture = template["Parameters"]["Architecture"]
expect("default architecture", architecture["Default"], "arm64")
expect("allowed architectures", sorted(architecture["AllowedValues"]), ["arm64", "x86_64"])
expect("log format", glob.get("LoggingConfig", {}).get("LogFormat"), "JSON")
expect("handler", glob["Handler"], "bootstrap")

for name, binary, policy in [
    ("StreamerFunction", "streamer", "DynamoDBReadPolicy"),
    ("SeederFunction", "seeder", "DynamoDBWritePolicy"),
]:
    fn = resources[name]
    expect(f"{name} build method", fn["Metadata"]["BuildMethod"], "rust-cargolambda")
    expect(f"{name} binary", fn["Metadata"]["BuildProperties"]["Binary"], binary)
    url = fn["Properties"]["FunctionUrlConfig"]
    expect(f"{name} auth", url["AuthType"], "AWS_IAM")
    expect(f"{name} invoke mode", url["InvokeMode"], "RESPONSE_STREAM")
    policies = [next(iter(p)) for p in fn["Properties"]["Policies"]]
    expect(f"{name} policies", policies, [policy])

if problems:
    sys.exit("template.yml:\n  " + "\n  ".join(problems))
print("template.yml: function URLs, build settings, table and policies as expected")
