// Negative cases for scripts/validate_manifests.mjs: each takes the manifests
// scripts/render_deploy.sh rendered (target/deploy), breaks one thing the deploy guide
// relies on, and requires the validator to refuse it naming the problem.
//
//   scripts/render_deploy.sh && node --test scripts/validate_manifests.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const rendered = path.join(root, "target", "deploy");
const version = fs.readFileSync(path.join(root, "Cargo.toml"), "utf8").match(/^version = "(.+)"/m)[1];
const digest = fs.readFileSync(path.join(root, "target", "oci", "claimgate.image.digest"), "utf8").trim();

function validate(mutate) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "claimgate-manifests-"));
  const files = [];
  for (const sub of ["istio", "istio-mesh", "envoy-gateway"]) {
    fs.mkdirSync(path.join(dir, sub));
    for (const name of fs.readdirSync(path.join(rendered, sub)).sort()) {
      const file = path.join(dir, sub, name);
      fs.copyFileSync(path.join(rendered, sub, name), file);
      files.push(file);
    }
  }
  if (mutate) {
    const [relative, from, to] = mutate;
    const file = path.join(dir, relative);
    const text = fs.readFileSync(file, "utf8");
    // The last occurrence: the header comments quote the same settings.
    const at = text.lastIndexOf(from);
    assert.ok(at >= 0, `${relative} contains ${from}`);
    fs.writeFileSync(file, text.slice(0, at) + to + text.slice(at + from.length));
  }
  const run = spawnSync("node", [path.join(root, "scripts", "validate_manifests.mjs"), "--version", version,
    "--digest", digest, "--tenant", "aethermarket", "--checks", path.join(dir, "checks"), ...files], { encoding: "utf8" });
  fs.rmSync(dir, { recursive: true, force: true });
  return run;
}

test("the rendered manifests pass", () => {
  const run = validate(null);
  assert.equal(run.status, 0, run.stderr);
});

const cases = [
  ["Istio EnvoyFilter without merged slashes", ["istio/edge.yaml", "merge_slashes: true", "merge_slashes: false"], "merge_slashes"],
  ["Istio EnvoyFilter keeping underscore headers", ["istio/edge.yaml", "headers_with_underscores_action: DROP_HEADER", "headers_with_underscores_action: ALLOW"], "headers_with_underscores_action"],
  ["Istio EnvoyFilter decoding escaped slashes", ["istio/edge.yaml", "path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD"], "path_with_escaped_slashes_action"],
  ["Istio EnvoyFilter selecting another gateway", ["istio/edge.yaml", "gateway-name: aethermarket", "gateway-name: shared"], "no EnvoyFilter MERGEs claimgate's edge settings"],
  ["Istio EnvoyFilter on sidecars", ["istio/edge.yaml", "context: GATEWAY", "context: SIDECAR_INBOUND"], "match.context must be GATEWAY"],
  ["Gateway without numTrustedProxies", ["istio/gateway.yaml", "numTrustedProxies: 0", "numTrustedProxies: many"], "numTrustedProxies"],
  ["Gateway without the plugin's stats", ["istio/gateway.yaml", `- "wasm.aethermarket.claimgate."`, ""], "lacks wasm.aethermarket.claimgate."],
  ["mesh overlay decoding slashes", ["istio-mesh/istio-operator.yaml", "normalization: MERGE_SLASHES", "normalization: DECODE_AND_MERGE_SLASHES"], "MERGE_SLASHES is what claimgate relies on"],
  ["mesh overlay with a typo", ["istio-mesh/istio-operator.yaml", "normalization: MERGE_SLASHES", "normalisation: MERGE_SLASHES"], "normalisation: not a field"],
  ["TLS origination on the HTTPS port", ["istio/auth0-jwks.yaml", "number: 80\n      tls:", "number: 443\n      tls:"], "must be protocol HTTP"],
  ["origination port not targeting 443", ["istio/auth0-jwks.yaml", "targetPort: 443", "targetPort: 8443"], "targets 8443"],
  ["WasmPlugin naming the HTTPS cluster", ["istio/wasmplugin.yaml", "cluster: outbound|80||", "cluster: outbound|443||"], "jwks.remote.cluster is outbound|443||aethermarket.auth0.com"],
  ["ClientTrafficPolicy on another Gateway", ["envoy-gateway/client-traffic.yaml", "name: aethermarket", "name: other"], "not what the EnvoyExtensionPolicy targets"],
  ["ClientTrafficPolicy decoding escaped slashes", ["envoy-gateway/client-traffic.yaml", "escapedSlashesAction: RejectRequest", "escapedSlashesAction: UnescapeForward"], "escapedSlashesAction is UnescapeForward"],
  ["ClientTrafficPolicy with an unknown enum value", ["envoy-gateway/client-traffic.yaml", "withUnderscoresAction: DropHeader", "withUnderscoresAction: Drop"], "must be one of Allow, RejectRequest, DropHeader"],
  ["ClientTrafficPolicy disabling merged slashes", ["envoy-gateway/client-traffic.yaml", "disableMergeSlashes: false", "disableMergeSlashes: true"], "disableMergeSlashes"],
  ["ClientTrafficPolicy field typo", ["envoy-gateway/client-traffic.yaml", "numTrustedHops: 0", "numTrustedHop: 0"], "numTrustedHop: not a field"],
  ["no ClientTrafficPolicy", ["envoy-gateway/client-traffic.yaml", "kind: ClientTrafficPolicy", "kind: ClientTrafficPolicyX"], "ClientTrafficPolicyX: no schema or structural check"],
];
for (const [name, mutation, expected] of cases) {
  test(name, () => {
    const run = validate(mutation);
    assert.equal(run.status, 1, `accepted: ${run.stdout}`);
    assert.match(run.stderr, new RegExp(expected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  });
}
