// Validates the rendered deployment manifests (scripts/render_deploy.sh calls this):
//
//   node scripts/validate_manifests.mjs --version V --digest HEX --tenant T --checks DIR FILE.yaml...
//
// - Istio resources (WasmPlugin, ServiceEntry, DestinationRule, EnvoyFilter, IstioOperator)
//   and Gateway API resources (GatewayClass, Gateway, HTTPRoute) against the published
//   schemas of the npm packages @kubernetes-models/istio and @kubernetes-models/gateway-api
//   (each model's validate()), plus a field-name typo check from the same packages' type
//   declarations (a Kubernetes schema accepts unknown fields; `kubectl apply` would drop or
//   refuse them). IstioOperator's published schema leaves spec open, so its meshConfig gets
//   a structural check written here from istio/api mesh/v1alpha1 (the fields used).
// - Envoy Gateway resources (EnvoyExtensionPolicy, EnvoyPatchPolicy, ClientTrafficPolicy):
//   no schema package exists on npm, so they get a STRUCTURAL check written here from Envoy
//   Gateway's api/v1alpha1 Go types (field names, required fields, enums, the sha256
//   pattern) — not the CRD's OpenAPI schema.
// - Cross-references: the claimgate configuration's jwks.remote.cluster is the cluster
//   the manifests create (Istio's outbound|PORT||HOST for the ServiceEntry port whose
//   DestinationRule originates TLS with SNI — an HTTP port targeting 443, never an HTTPS
//   one; the EnvoyPatchPolicy's cluster name), image tags are the crate version, sha256 is
//   the packaged image digest, targetRefs and selectors name the API's Gateway, and the
//   embedded configuration is the AetherMarket demo's except for the tenant's keys.
// - The edge requirements (envoy/deploy/EDGE.md): the Istio EnvoyFilter merges
//   normalize_path, merge_slashes, path_with_escaped_slashes_action REJECT_REQUEST and
//   headers_with_underscores_action DROP_HEADER into the API gateway's HCM; the Gateway's
//   proxy.istio.io/config sets gatewayTopology.numTrustedProxies and the stats claimgate
//   needs; the mesh overlay sets pathNormalization MERGE_SLASHES; the ClientTrafficPolicy
//   targets the Gateway the EnvoyExtensionPolicy does, with RejectRequest, merged slashes,
//   DropHeader and numTrustedHops.
// - Writes each embedded claimgate configuration (DIR/NAME.claimgate.json, for
//   `claimgate check`), each patched-in Envoy cluster as a bootstrap and the EnvoyFilter's
//   HCM fields in a listener (DIR/NAME.envoy.json, for `envoy --mode validate`).
// Any finding is an error; the exit status is 1 when there is one.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const modules = path.join(root, ".tools", "node_modules");
if (!fs.existsSync(path.join(modules, "@kubernetes-models", "istio"))) {
  console.error("validate_manifests: .tools/node_modules is missing: run scripts/bootstrap.sh --release-tools");
  process.exit(2);
}
const load = (relative) => import(pathToFileURL(path.join(modules, relative)).href);
const YAML = (await load("yaml/dist/index.js")).default;

const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  if (at < 0 || at + 1 >= args.length) {
    console.error(`validate_manifests: ${name} is required`);
    process.exit(2);
  }
  return args.splice(at, 2)[1];
};
const version = option("--version");
const digest = option("--digest");
const tenant = option("--tenant");
const checks = option("--checks");
const files = args;
fs.mkdirSync(checks, { recursive: true });

const errors = [];
const fail = (where, message) => errors.push(`${where}: ${message}`);

// ---- published schemas -------------------------------------------------------------
const istio = "@kubernetes-models/istio";
const gatewayApi = "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1";
const schemaModels = {
  "extensions.istio.io/v1alpha1/WasmPlugin": `${istio}/extensions.istio.io/v1alpha1/WasmPlugin`,
  "networking.istio.io/v1/ServiceEntry": `${istio}/networking.istio.io/v1/ServiceEntry`,
  "networking.istio.io/v1/DestinationRule": `${istio}/networking.istio.io/v1/DestinationRule`,
  "networking.istio.io/v1alpha3/EnvoyFilter": `${istio}/networking.istio.io/v1alpha3/EnvoyFilter`,
  "install.istio.io/v1alpha1/IstioOperator": `${istio}/install.istio.io/v1alpha1/IstioOperator`,
  "gateway.networking.k8s.io/v1/GatewayClass": `${gatewayApi}/GatewayClass`,
  "gateway.networking.k8s.io/v1/Gateway": `${gatewayApi}/Gateway`,
  "gateway.networking.k8s.io/v1/HTTPRoute": `${gatewayApi}/HTTPRoute`,
};

// Field names the package's type declarations know (for Istio the whole type is inline in
// one .d.ts; for the Gateway API, every .d.ts of the version: a coarser net).
function knownFields(modelPath) {
  const declarations = modelPath.startsWith(gatewayApi)
    ? fs.readdirSync(path.join(modules, gatewayApi)).filter((f) => f.endsWith(".d.ts")).map((f) => path.join(modules, gatewayApi, f))
    : [path.join(modules, `${modelPath}.d.ts`)];
  const names = new Set(["apiVersion", "kind", "metadata", "name", "namespace", "labels", "annotations"]);
  for (const file of declarations) {
    for (const match of fs.readFileSync(file, "utf8").matchAll(/"([A-Za-z0-9_$]+)"\??:/g)) names.add(match[1]);
  }
  return names;
}

// Objects whose keys are data, not field names.
const FREE_FORM = new Set(["pluginConfig", "config", "matchLabels", "labels", "annotations", "value"]);
function typoCheck(where, value, known, trail = "") {
  if (Array.isArray(value)) {
    value.forEach((item, index) => typoCheck(where, item, known, `${trail}[${index}]`));
  } else if (value && typeof value === "object") {
    for (const [key, child] of Object.entries(value)) {
      if (!known.has(key)) fail(where, `${trail}.${key}: not a field of this resource`);
      if (!FREE_FORM.has(key)) typoCheck(where, child, known, `${trail}.${key}`);
    }
  }
}

// ---- Envoy Gateway: structural check from the Go types ------------------------------
// Shape: {field: [required, check]}; check is a nested shape, an array [shape] for lists,
// or a function (value) => error message | undefined.
const str = (v) => (typeof v === "string" && v.length > 0 ? undefined : "must be a non-empty string");
const oneOf = (...allowed) => (v) => (allowed.includes(v) ? undefined : `must be one of ${allowed.join(", ")}`);
const bool = (v) => (typeof v === "boolean" ? undefined : "must be true or false");
const int = (v) => (Number.isInteger(v) ? undefined : "must be an integer");
const anyJson = () => undefined;
const sha256 = (v) => (/^[a-f0-9]{64}$/.test(v) ? undefined : "must be 64 lowercase hex digits");
const targetRef = {
  group: [true, str],
  kind: [true, str],
  name: [true, str],
  sectionName: [false, str],
};
const eg = {
  EnvoyExtensionPolicy: {
    targetRefs: [false, [targetRef]],
    targetRef: [false, targetRef],
    targetSelectors: [false, anyJson],
    wasm: [false, [{
      name: [false, str],
      rootID: [false, str],
      failOpen: [false, bool],
      config: [false, anyJson],
      env: [false, { hostKeys: [false, [str]] }],
      code: [true, {
        type: [true, oneOf("HTTP", "Image", "ConfigMap")],
        http: [false, { url: [true, str], sha256: [false, sha256], tls: [false, anyJson] }],
        image: [false, { url: [true, str], sha256: [false, sha256], pullSecretRef: [false, anyJson], tls: [false, anyJson] }],
        configMap: [false, anyJson],
        pullPolicy: [false, oneOf("IfNotPresent", "Always")],
      }],
    }]],
    extProc: [false, anyJson],
    lua: [false, anyJson],
  },
  // ClientTrafficPolicy: the fields the edge settings use (clienttrafficpolicy_types.go,
  // pathsettings_types.go); other top-level fields are accepted without a deeper check.
  ClientTrafficPolicy: {
    targetRefs: [false, [targetRef]],
    targetRef: [false, targetRef],
    targetSelectors: [false, anyJson],
    path: [false, {
      escapedSlashesAction: [false, oneOf("KeepUnchanged", "RejectRequest", "UnescapeForward", "UnescapeRedirect")],
      disableMergeSlashes: [false, bool],
    }],
    headers: [false, {
      enableEnvoyHeaders: [false, bool],
      disableRateLimitHeaders: [false, bool],
      xForwardedClientCert: [false, anyJson],
      withUnderscoresAction: [false, oneOf("Allow", "RejectRequest", "DropHeader")],
      preserveXRequestID: [false, bool],
      requestID: [false, oneOf("PreserveOrGenerate", "Preserve", "Generate", "Disable")],
      earlyRequestHeaders: [false, anyJson],
      lateResponseHeaders: [false, anyJson],
    }],
    clientIPDetection: [false, {
      xForwardedFor: [false, {
        numTrustedHops: [false, (v) => (Number.isInteger(v) && v >= 0 ? undefined : "must be an integer >= 0")],
        trustedCIDRs: [false, [str]],
        disableXForwardedForAppend: [false, bool],
      }],
      customHeader: [false, { name: [true, str], failClosed: [false, bool] }],
    }],
    tcpKeepalive: [false, anyJson],
    enableProxyProtocol: [false, bool],
    proxyProtocol: [false, anyJson],
    tls: [false, anyJson],
    timeout: [false, anyJson],
    connection: [false, anyJson],
    http1: [false, anyJson],
    http2: [false, anyJson],
    http3: [false, anyJson],
    grpc: [false, anyJson],
    healthCheck: [false, anyJson],
    scheme: [false, oneOf("Preserve", "MatchBackend")],
  },
  // Global rate limits by tier (api/v1alpha1 BackendTrafficPolicy, RateLimitSpec).
  BackendTrafficPolicy: {
    targetRefs: [false, [targetRef]],
    targetRef: [false, targetRef],
    targetSelectors: [false, anyJson],
    rateLimit: [false, {
      type: [false, oneOf("Global", "Local")],
      global: [false, {
        rules: [true, [{
          clientSelectors: [false, [{
            headers: [false, [{
              name: [true, str],
              type: [false, oneOf("Exact", "RegularExpression", "Distinct")],
              value: [false, str],
              invert: [false, bool],
            }]],
            sourceCIDR: [false, anyJson],
            methods: [false, anyJson],
            path: [false, anyJson],
          }]],
          limit: [true, {
            requests: [true, int],
            unit: [true, oneOf("Second", "Minute", "Hour", "Day", "Month", "Year")],
          }],
          cost: [false, anyJson],
          shared: [false, bool],
        }]],
      }],
      local: [false, anyJson],
    }],
  },
  EnvoyPatchPolicy: {
    targetRef: [true, { group: [true, str], kind: [true, str], name: [true, str] }],
    type: [true, oneOf("JSONPatch")],
    priority: [false, int],
    jsonPatches: [false, [{
      type: [true, oneOf(
        "type.googleapis.com/envoy.config.listener.v3.Listener",
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
      )],
      name: [true, str],
      operation: [true, {
        op: [true, oneOf("add", "remove", "replace", "move", "copy", "test")],
        path: [true, (v) => (typeof v === "string" ? undefined : "must be a string")],
        from: [false, str],
        value: [false, anyJson],
      }],
    }]],
  },
};

// IstioOperator spec: the fields the mesh overlay uses (istio/api mesh/v1alpha1/config.proto:
// MeshConfig.pathNormalization, ProxyPathNormalization.NormalizationType).
const istioOperatorSpec = {
  meshConfig: [true, {
    pathNormalization: [false, {
      normalization: [true, oneOf("DEFAULT", "NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES")],
    }],
    defaultConfig: [false, anyJson],
  }],
};

function structural(where, value, shape, trail) {
  if (typeof shape === "function") {
    const message = shape(value);
    if (message) fail(where, `${trail}: ${message}`);
  } else if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return fail(where, `${trail}: must be a list`);
    value.forEach((item, index) => structural(where, item, shape[0], `${trail}[${index}]`));
  } else {
    if (!value || typeof value !== "object" || Array.isArray(value)) return fail(where, `${trail}: must be an object`);
    for (const key of Object.keys(value)) {
      if (!(key in shape)) fail(where, `${trail}.${key}: not a field (Envoy Gateway v1alpha1 types)`);
    }
    for (const [key, [required, check]] of Object.entries(shape)) {
      if (value[key] === undefined) {
        if (required) fail(where, `${trail}.${key}: required`);
      } else {
        structural(where, value[key], check, `${trail}.${key}`);
      }
    }
  }
}

// ---- load and check every document --------------------------------------------------
const docs = [];
for (const file of files) {
  const parsed = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  parsed.forEach((doc, index) => {
    const where = `${path.relative(root, file)}#${index + 1}`;
    if (doc.errors.length) return fail(where, doc.errors.map((e) => e.message).join("; "));
    const value = doc.toJS();
    if (value === null) return;
    docs.push({ where, value });
  });
}

let validated = 0;
for (const { where, value } of docs) {
  const key = `${value.apiVersion}/${value.kind}`;
  const name = `${value.kind}/${value.metadata?.name ?? "(overlay)"}`;
  if (schemaModels[key]) {
    const modelPath = schemaModels[key];
    const module = await load(`${modelPath}.js`);
    const Model = module[value.kind];
    try {
      new Model(value).validate();
    } catch (error) {
      fail(`${where} ${name}`, `schema: ${error.message}`);
    }
    if (value.kind === "IstioOperator") structural(`${where} ${name}`, value.spec, istioOperatorSpec, "spec");
    else typoCheck(`${where} ${name}`, value, knownFields(modelPath));
    validated++;
    console.log(`validate_manifests: ${where} ${name}: schema (${modelPath.split("/").slice(0, 2).join("/")}) OK`);
  } else if (value.apiVersion === "gateway.envoyproxy.io/v1alpha1" && eg[value.kind]) {
    if (!value.metadata?.name) fail(where, "metadata.name: required");
    structural(`${where} ${name}`, value.spec, eg[value.kind], "spec");
    validated++;
    console.log(`validate_manifests: ${where} ${name}: structural check (Envoy Gateway v1alpha1 types, no published schema) OK`);
  } else {
    fail(where, `${key}: no schema or structural check for this kind`);
  }
}

// ---- cross-references and extracted checks ------------------------------------------
const byKind = (kind) => docs.filter((d) => d.value.kind === kind).map((d) => d.value);
const idpHost = `${tenant}.auth0.com`;
const demo = JSON.parse(fs.readFileSync(path.join(root, "filter-config/aethermarket.json"), "utf8"));

// The API's hosts: the hostnames of the HTTPRoutes here (the Gateway listeners' hostnames
// when no route names any). Every deployed rule must be scoped to exactly these
// (`match.hosts`): with default_access deny, a rule for any host on a shared gateway
// refuses other applications' requests.
function apiHosts() {
  const routes = byKind("HTTPRoute").flatMap((r) => r.spec.hostnames ?? []);
  const listeners = byKind("Gateway").flatMap((g) => g.spec.listeners.map((l) => l.hostname).filter(Boolean));
  return [...new Set(routes.length ? routes : listeners)].sort();
}

function checkClaimgateConfig(where, config, expectedCluster, fileName) {
  if (!config || typeof config !== "object") return fail(where, "no claimgate configuration");
  const hosts = apiHosts();
  if (hosts.length === 0) fail(where, "no HTTPRoute hostnames or Gateway listener hostnames: the API's hosts are unknown");
  (config.rules ?? []).forEach((rule, index) => {
    const ruleHosts = [...(rule.match?.hosts ?? [])].sort();
    if (JSON.stringify(ruleHosts) !== JSON.stringify(hosts)) {
      fail(where, `rules[${index}] (${rule.name}): match.hosts ${JSON.stringify(ruleHosts)} is not the API's hosts ${JSON.stringify(hosts)} — on a shared gateway a rule for any host refuses other applications' requests`);
    }
  });
  const remote = config.providers?.[0]?.jwks?.remote;
  if (!remote) return fail(where, "providers[0].jwks.remote: the deployment fetches the tenant's keys");
  if (remote.cluster !== expectedCluster) fail(where, `jwks.remote.cluster is ${remote.cluster}, the manifests create ${expectedCluster}`);
  if (remote.authority !== idpHost) fail(where, `jwks.remote.authority is ${remote.authority}, expected ${idpHost}`);
  // The AetherMarket behaviour, unchanged: everything but the tenant's issuer and keys.
  const expected = structuredClone(demo);
  expected.providers[0].issuer = `https://${idpHost}/`;
  expected.providers[0].jwks = config.providers[0].jwks;
  expected.rules.forEach((rule) => { rule.match = { ...(rule.match ?? {}), hosts: apiHosts() }; });
  config = structuredClone(config);
  config.rules?.forEach((rule) => { if (rule.match?.hosts) rule.match.hosts = [...rule.match.hosts].sort(); });
  if (JSON.stringify(sortKeys(config)) !== JSON.stringify(sortKeys(expected))) {
    fail(where, "the configuration differs from filter-config/aethermarket.json beyond the tenant's issuer and keys and the rules' hosts");
  }
  fs.writeFileSync(path.join(checks, fileName), JSON.stringify(config, null, 2));
}
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
  return value;
}

const pluginStatNames = [];
for (const plugin of byKind("WasmPlugin")) {
  const where = `WasmPlugin/${plugin.metadata.name}`;
  const spec = plugin.spec;
  if (!spec.url.endsWith(`/claimgate:${version}`)) fail(where, `url ${spec.url} is not the claimgate image tagged ${version}`);
  if (!spec.url.startsWith("oci://")) fail(where, "url must be oci://");
  if (spec.sha256 !== digest) fail(where, `sha256 ${spec.sha256} is not the image digest ${digest}`);
  if (spec.phase !== "AUTHN") fail(where, "phase must be AUTHN");
  if (spec.failStrategy !== "FAIL_CLOSE") fail(where, "failStrategy must be FAIL_CLOSE");
  if (spec.selector) fail(where, "selector: the plugin must be scoped to the API's Gateway with targetRefs, not a label selector that may pick a shared gateway");
  const refs = spec.targetRefs ?? [];
  if (refs.length === 0) fail(where, "no targetRefs: the plugin must be attached to the API's Gateway");
  for (const ref of refs) {
    const gateway = byKind("Gateway").find((g) => g.metadata.name === ref.name);
    if (ref.kind !== "Gateway" || ref.group !== "gateway.networking.k8s.io") fail(where, `targetRefs: ${ref.group}/${ref.kind} is not a Gateway API Gateway`);
    else if (!gateway) fail(where, `targetRefs: Gateway ${ref.name} is not in these manifests`);
    else if (gateway.metadata.namespace !== plugin.metadata.namespace) fail(where, `targetRefs: Gateway ${ref.name} is in ${gateway.metadata.namespace}, the plugin in ${plugin.metadata.namespace} (targetRefs are same-namespace)`);
  }
  for (const kind of ["ServiceEntry", "DestinationRule"]) {
    for (const resource of byKind(kind)) {
      if (resource.metadata.namespace !== plugin.metadata.namespace) fail(where, `${kind}/${resource.metadata.name} is in ${resource.metadata.namespace}, not with the gateway in ${plugin.metadata.namespace} (exportTo ".")`);
    }
  }
  pluginStatNames.push(`wasm.${plugin.metadata.namespace}.${plugin.metadata.name}.`);
  // The IdP cluster: the ServiceEntry port whose DestinationRule originates TLS. Istio's
  // TLS-origination shape: a port with protocol HTTP (what the module sends) targeting the
  // tenant's 443; TLS origination on an HTTPS/TLS port would wrap the TLS of any application
  // that speaks HTTPS to the tenant itself a second time.
  let cluster = `outbound|?||${idpHost}`;
  const entry = byKind("ServiceEntry").find((se) => se.spec.hosts?.includes(idpHost));
  const rule = byKind("DestinationRule").find((dr) => dr.spec.host === idpHost);
  const originating = (rule?.spec.trafficPolicy?.portLevelSettings ?? []).filter((s) => s.tls?.mode === "SIMPLE");
  if (!entry) fail(where, `no ServiceEntry for ${idpHost}`);
  else if (!rule) fail(where, `no DestinationRule for ${idpHost}`);
  else if (rule.spec.trafficPolicy?.tls) fail(where, `DestinationRule ${rule.metadata.name}: TLS for every port would also wrap applications' own HTTPS; set it on the origination port only (portLevelSettings)`);
  else if (originating.length !== 1) fail(where, `DestinationRule ${rule.metadata.name}: exactly one port must originate TLS (tls.mode SIMPLE), found ${originating.length}`);
  else {
    const { port, tls } = originating[0];
    const servicePort = entry.spec.ports?.find((p) => p.number === port?.number);
    if (!servicePort) fail(where, `DestinationRule ${rule.metadata.name} originates TLS on port ${port?.number}, which the ServiceEntry does not declare`);
    else {
      if (servicePort.protocol !== "HTTP") fail(where, `ServiceEntry port ${servicePort.number} is ${servicePort.protocol}: the TLS-origination port must be protocol HTTP (claimgate sends plain HTTP; on an HTTPS port an application's own TLS would be wrapped twice)`);
      const target = servicePort.targetPort ?? servicePort.number;
      if (target !== 443) fail(where, `ServiceEntry port ${servicePort.number} targets ${target}, the tenant serves HTTPS on 443`);
      cluster = `outbound|${servicePort.number}||${idpHost}`;
    }
    if (tls.sni !== idpHost) fail(where, `DestinationRule tls.sni is ${tls.sni}, expected ${idpHost}`);
    if (!(tls.subjectAltNames ?? []).includes(idpHost)) fail(where, `DestinationRule tls.subjectAltNames lacks ${idpHost}: the certificate must be checked against the tenant's name`);
    if (tls.insecureSkipVerify) fail(where, "DestinationRule tls.insecureSkipVerify: the tenant's certificate must be checked");
  }
  checkClaimgateConfig(where, spec.pluginConfig, cluster, `istio-${plugin.metadata.name}.claimgate.json`);
}

const gateways = byKind("Gateway").map((g) => g.metadata.name);
const patchedClusters = new Map();
for (const patch of byKind("EnvoyPatchPolicy")) {
  const where = `EnvoyPatchPolicy/${patch.metadata.name}`;
  if (!gateways.includes(patch.spec.targetRef?.name)) fail(where, `targetRef ${patch.spec.targetRef?.name} is not a Gateway here`);
  for (const jsonPatch of patch.spec.jsonPatches ?? []) {
    if (jsonPatch.type.endsWith(".Cluster") && jsonPatch.operation.op === "add" && jsonPatch.operation.path === "") {
      const cluster = jsonPatch.operation.value;
      if (cluster.name !== jsonPatch.name) fail(where, `patch name ${jsonPatch.name} differs from the cluster's ${cluster.name}`);
      patchedClusters.set(cluster.name, cluster);
      fs.writeFileSync(path.join(checks, `eg-${cluster.name}.envoy.json`), JSON.stringify({ static_resources: { clusters: [cluster] } }, null, 2));
    }
  }
}
for (const policy of byKind("EnvoyExtensionPolicy")) {
  const where = `EnvoyExtensionPolicy/${policy.metadata.name}`;
  for (const ref of policy.spec.targetRefs ?? []) {
    if (ref.kind === "Gateway" && !gateways.includes(ref.name)) fail(where, `targetRef ${ref.name} is not a Gateway here`);
  }
  for (const [index, wasm] of (policy.spec.wasm ?? []).entries()) {
    const image = wasm.code?.image;
    if (!image) { fail(where, `wasm[${index}]: the deployment uses the OCI image`); continue; }
    if (!image.url.endsWith(`/claimgate:${version}`)) fail(where, `wasm[${index}] image ${image.url} is not the claimgate image tagged ${version}`);
    if (image.url.includes("://")) fail(where, `wasm[${index}] image url takes no scheme (registry/image:tag)`);
    if (image.sha256 !== digest) fail(where, `wasm[${index}] sha256 ${image.sha256} is not the image digest ${digest}`);
    if (wasm.failOpen !== false) fail(where, `wasm[${index}].failOpen must be false`);
    const cluster = wasm.config?.providers?.[0]?.jwks?.remote?.cluster;
    const patched = patchedClusters.get(cluster);
    if (!patched) fail(where, `jwks.remote.cluster ${cluster} is added by no EnvoyPatchPolicy here`);
    else {
      const sni = patched.transport_socket?.typed_config?.sni;
      if (sni !== idpHost) fail(where, `cluster ${cluster} has SNI ${sni}, expected ${idpHost}`);
    }
    checkClaimgateConfig(where, wasm.config, cluster, `eg-${policy.metadata.name}-${index}.claimgate.json`);
  }
}
// ---- the edge requirements (envoy/deploy/EDGE.md) -----------------------------------
const istioGateways = byKind("Gateway").filter((g) => g.spec.gatewayClassName === "istio");
for (const gateway of istioGateways) {
  // proxy.istio.io/config in spec.infrastructure.annotations: Istio copies it onto the
  // gateway's pods (no patch of the Deployment it owns).
  const where = `Gateway/${gateway.metadata.name}`;
  const config = gateway.spec.infrastructure?.annotations?.["proxy.istio.io/config"];
  if (config === undefined) { fail(where, "spec.infrastructure.annotations lacks proxy.istio.io/config (numTrustedProxies, claimgate's stats)"); continue; }
  let parsed;
  try { parsed = YAML.parse(config); } catch (error) { fail(where, `proxy.istio.io/config: ${error.message}`); continue; }
  const known = new Set(["gatewayTopology", "proxyStatsMatcher", "concurrency", "proxyMetadata", "holdApplicationUntilProxyStarts", "terminationDrainDuration", "drainDuration", "connectionSettings"]);
  for (const key of Object.keys(parsed ?? {})) if (!known.has(key)) fail(where, `proxy.istio.io/config: ${key} is not a ProxyConfig field this check knows`);
  const hops = parsed?.gatewayTopology?.numTrustedProxies;
  if (!Number.isInteger(hops) || hops < 0) fail(where, "proxy.istio.io/config: gatewayTopology.numTrustedProxies must be an integer >= 0 (the HTTP proxies in front of the gateway)");
  const prefixes = parsed?.proxyStatsMatcher?.inclusionPrefixes ?? [];
  // Istio names a WasmPlugin's Envoy plugin <namespace>.<name>: its stats are under that.
  const plugins = byKind("WasmPlugin").filter((p) => p.metadata.namespace === gateway.metadata.namespace && (p.spec.targetRefs ?? []).some((r) => r.name === gateway.metadata.name));
  for (const wanted of ["wasmcustom.claimgate.", ...plugins.map((p) => `wasm.${p.metadata.namespace}.${p.metadata.name}.`)]) {
    if (!prefixes.includes(wanted)) fail(where, `proxy.istio.io/config: proxyStatsMatcher.inclusionPrefixes lacks ${wanted}`);
  }
  // The EnvoyFilter that sets the HCM options on this gateway's pods.
  const filters = byKind("EnvoyFilter").filter((f) => f.metadata.namespace === gateway.metadata.namespace
    && f.spec.workloadSelector?.labels?.["gateway.networking.k8s.io/gateway-name"] === gateway.metadata.name);
  if (filters.length === 0) { fail(where, "no EnvoyFilter in its namespace selects its pods (workloadSelector gateway.networking.k8s.io/gateway-name)"); continue; }
  const hcm = {};
  let hcmPatches = 0;
  for (const filter of filters) {
    for (const patch of filter.spec.configPatches ?? []) {
      const fw = `EnvoyFilter/${filter.metadata.name}`;
      // Only the HCM patches carry the edge settings; other EnvoyFilters on these pods
      // (the global rate limit's HTTP_FILTER and VIRTUAL_HOST patches) are checked with
      // their own manifests.
      if (patch.applyTo !== "NETWORK_FILTER") continue;
      if (patch.patch?.operation !== "MERGE") { fail(fw, "expected a MERGE into the NETWORK_FILTER http_connection_manager"); continue; }
      hcmPatches += 1;
      if (patch.match?.context !== "GATEWAY") fail(fw, "match.context must be GATEWAY");
      if (patch.match?.listener?.filterChain?.filter?.name !== "envoy.filters.network.http_connection_manager") fail(fw, "match must name envoy.filters.network.http_connection_manager");
      const typed = patch.patch.value?.typed_config ?? {};
      if (typed["@type"] !== "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager") fail(fw, "typed_config @type must be the v3 HttpConnectionManager");
      Object.assign(hcm, typed);
    }
  }
  if (hcmPatches === 0) fail(where, "no EnvoyFilter MERGEs claimgate's edge settings into the http_connection_manager");
  const wantedHcm = {
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: "REJECT_REQUEST",
    "common_http_protocol_options.headers_with_underscores_action": "DROP_HEADER",
  };
  for (const [field, value] of Object.entries(wantedHcm)) {
    const got = field.split(".").reduce((o, k) => o?.[k], hcm);
    if (got !== value) fail(where, `EnvoyFilter: ${field} is ${JSON.stringify(got)}, claimgate's edge needs ${JSON.stringify(value)}`);
  }
  // Envoy itself checks the merged fields, in a listener like the gateway's.
  const { "@type": type, ...fields } = hcm;
  fs.writeFileSync(path.join(checks, `istio-${gateway.metadata.name}-edge-hcm.envoy.json`), JSON.stringify({
    static_resources: { listeners: [{
      name: "edge", address: { socket_address: { address: "127.0.0.1", port_value: 10000 } },
      filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: {
        "@type": type, stat_prefix: "edge", use_remote_address: true, xff_num_trusted_hops: hops ?? 0,
        route_config: { virtual_hosts: [{ name: "api", domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200 } }] }] },
        http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
        ...fields,
      } }] }],
    }] },
  }, null, 2));
  console.log(`validate_manifests: ${where}: proxy.istio.io/config and EnvoyFilter edge settings OK`);
}
for (const operator of byKind("IstioOperator")) {
  const normalization = operator.spec?.meshConfig?.pathNormalization?.normalization;
  if (normalization !== "MERGE_SLASHES") fail("IstioOperator", `meshConfig.pathNormalization.normalization is ${normalization}: MERGE_SLASHES is what claimgate relies on (DECODE_AND_MERGE_SLASHES also decodes %2F for the whole mesh)`);
}
const extensionTargets = byKind("EnvoyExtensionPolicy").flatMap((p) => (p.spec.targetRefs ?? []).map((r) => `${p.metadata.namespace}/${r.kind}/${r.name}`));
for (const policy of byKind("ClientTrafficPolicy")) {
  const where = `ClientTrafficPolicy/${policy.metadata.name}`;
  const targets = (policy.spec.targetRefs ?? [policy.spec.targetRef].filter(Boolean)).map((r) => `${policy.metadata.namespace}/${r.kind}/${r.name}`);
  if (targets.length === 0) fail(where, "no targetRefs");
  for (const target of targets) {
    if (!extensionTargets.includes(target)) fail(where, `targets ${target}, which is not what the EnvoyExtensionPolicy targets (${extensionTargets.join(", ") || "none"}): the edge settings must cover claimgate's listener`);
    const [, kind, name] = target.split("/");
    if (kind !== "Gateway") fail(where, `targets a ${kind}: a ClientTrafficPolicy configures a Gateway's listeners`);
    else if (!gateways.includes(name)) fail(where, `targetRef ${name} is not a Gateway here`);
  }
  const spec = policy.spec;
  if (spec.path?.escapedSlashesAction !== "RejectRequest") fail(where, `path.escapedSlashesAction is ${spec.path?.escapedSlashesAction}, claimgate's edge uses RejectRequest`);
  if (spec.path?.disableMergeSlashes === true) fail(where, "path.disableMergeSlashes: the path forwarded must be the merged path claimgate matched");
  if (spec.headers?.withUnderscoresAction !== "DropHeader") fail(where, `headers.withUnderscoresAction is ${spec.headers?.withUnderscoresAction}, claimgate's edge uses DropHeader`);
  if (!Number.isInteger(spec.clientIPDetection?.xForwardedFor?.numTrustedHops)) fail(where, "clientIPDetection.xForwardedFor.numTrustedHops: state how many HTTP proxies are in front (0 for none)");
}
if (byKind("EnvoyExtensionPolicy").length > 0 && byKind("ClientTrafficPolicy").length === 0) fail("manifests", "no ClientTrafficPolicy for the Envoy Gateway edge settings");

if (byKind("WasmPlugin").length === 0 && byKind("EnvoyExtensionPolicy").length === 0) fail("manifests", "no WasmPlugin or EnvoyExtensionPolicy given");
if (errors.length) {
  for (const error of errors) console.error(`validate_manifests: ERROR ${error}`);
  console.error(`validate_manifests: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`validate_manifests: ${validated} resources OK`);
