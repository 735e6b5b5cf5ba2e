// Validates external-secrets manifests against the schemas of
// @kubernetes-models/external-secrets (generated from the external-secrets
// API types). Reads a JSON list of manifests on stdin; prints a JSON list
// with, per manifest, null when it is valid or the validation errors.
// Run by tests/test_app_environment.py with the node that `make venv`
// installs; the package is installed by `npm ci` from package-lock.json.
import { readFileSync } from "node:fs";

const manifests = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const m of manifests) {
  const [group, version] = m.apiVersion.split("/");
  if (group !== "external-secrets.io") {
    results.push([`not an external-secrets kind: ${m.apiVersion}`]);
    continue;
  }
  const module = await import(
    `@kubernetes-models/external-secrets/external-secrets.io/${version}/${m.kind}`
  );
  const Model = module[m.kind];
  try {
    new Model(m).validate();
    results.push(null);
  } catch (e) {
    results.push([String(e.message || e)]);
  }
}
process.stdout.write(JSON.stringify(results));
