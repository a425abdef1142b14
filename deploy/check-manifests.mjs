// `make check-deploy` (deploy/check.sh): the Kubernetes manifests in deploy/k8s, checked
// without a cluster. Each YAML document is parsed as Kubernetes parses it (YAML 1.1), then
//  - validated against its kind's schema (kubernetes-models: the OpenAPI schemas of Kubernetes
//    1.36, compiled to ajv validators): types, required fields, enumerations;
//  - type-checked against the same models' TypeScript declarations as an object literal, which
//    is what catches a misspelled field: the OpenAPI schemas allow unknown fields, so
//    `runAsNonroot: true` would pass them (and a cluster would drop it, or refuse it at apply);
//  - held to the rules below (security, probes, Services, the tracker's own configuration:
//    the pod's environment goes through the tracker's real loader, dist/engine/config.js).
// Prints `ok   …` / `FAIL …` lines like check.sh; exits 1 on any failure.
//
//   node deploy/check-manifests.mjs [directory]     # default deploy/k8s
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = resolve(process.argv[2] ?? join(root, 'deploy/k8s'));
let failed = false;
const ok = (msg) => console.log(`ok   ${msg}`);
const bad = (msg) => {
  console.log(`FAIL ${msg}`);
  failed = true;
};
/** One line for a rule: ok when `problems` is empty, else FAIL naming each. */
const rule = (msg, problems) => (problems.length === 0 ? ok(msg) : bad(`${msg}: ${problems.join('; ')}`));

// API versions a current cluster serves (kubernetes-models also holds removed ones, such as
// policy/v1beta1, which its schemas would accept)
const SERVED = new Set(['v1', 'apps/v1', 'policy/v1', 'networking.k8s.io/v1', 'autoscaling/v2', 'batch/v1', 'rbac.authorization.k8s.io/v1']);
const CLUSTER_SCOPED = new Set(['Namespace']);

// ---- read every document
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
const docs = []; // { file, obj }
let kustomization;
for (const file of files) {
  for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'), { version: '1.1', prettyErrors: false })) {
    const errors = [...doc.errors, ...doc.warnings];
    if (errors.length) {
      bad(`${file}: YAML: ${errors.map((e) => e.message).join('; ')}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue; // an empty document (comments only)
    if (typeof obj !== 'object' || Array.isArray(obj)) {
      bad(`${file}: a document that is not a mapping`);
      continue;
    }
    if (obj.kind === 'Kustomization') kustomization = { file, obj };
    else docs.push({ file, obj });
  }
}
if (docs.length === 0) bad(`no Kubernetes objects in ${relative(root, dir) || dir}`);
const name = (d) => `${d.file}: ${d.obj.kind ?? '?'}/${d.obj.metadata?.name ?? '?'}`;

// ---- schema (kubernetes-models' validators), then field names and types (the same models'
// TypeScript declarations: excess property checks); one line per document
const models = []; // docs with a model
const problems = new Map(); // doc → [problem]
for (const d of docs) {
  const { apiVersion, kind } = d.obj;
  if (!SERVED.has(apiVersion) || typeof kind !== 'string' || !/^[A-Z][A-Za-z]+$/.test(kind)) {
    bad(`${name(d)}: apiVersion ${apiVersion} kind ${kind} is not one this check knows (served: ${[...SERVED].join(', ')})`);
    continue;
  }
  let Model;
  try {
    Model = (await import(`kubernetes-models/${apiVersion}/${kind}`))[kind];
  } catch {
    bad(`${name(d)}: no ${kind} in ${apiVersion}`);
    continue;
  }
  models.push(d);
  problems.set(d, []);
  try {
    new Model(d.obj).validate();
  } catch (e) {
    for (const x of e.errors ?? [{ instancePath: '', message: e.message }]) {
      problems.get(d).push(`${x.instancePath.slice(1).replace(/\/(\d+)(?=\/|$)/g, '[$1]').replaceAll('/', '.') || '(top)'} ${x.message}${x.params?.allowedValues ? ` (${x.params.allowedValues.join(', ')})` : ''}`);
    }
  }
}
if (models.length) {
  const file = join(root, 'deploy/__manifests-check.mts'); // in memory only: resolves this repository's node_modules
  let src = '';
  models.forEach((d, i) => {
    const { apiVersion, kind } = d.obj;
    src += `import type { I${kind} as T${i} } from 'kubernetes-models/${apiVersion}/${kind}';\n`;
    src += `export const doc${i}: T${i} = ${JSON.stringify(d.obj, null, 1)};\n`;
  });
  const options = { strict: true, noEmit: true, skipLibCheck: true, types: [], target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext };
  const host = ts.createCompilerHost(options, true);
  const sourceFile = ts.createSourceFile(file, src, ts.ScriptTarget.ES2022, true);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (f, ...rest) => (f === file ? sourceFile : getSourceFile.call(host, f, ...rest));
  host.fileExists = (f) => f === file || fileExists.call(host, f);
  host.readFile = (f) => (f === file ? src : readFile.call(host, f));
  for (const diag of ts.getPreEmitDiagnostics(ts.createProgram([file], options, host))) {
    const text = ts.flattenDiagnosticMessageText(diag.messageText, ' ').replaceAll('"', '');
    const where = diag.file === sourceFile && diag.start !== undefined ? pathAt(sourceFile, diag.start) : undefined;
    if (where) problems.get(models[where.doc]).push(`${where.path || '(top)'}: ${text}`);
    else bad(`type check: ${text}`);
  }
}
for (const [d, p] of problems) rule(`${name(d)}: ${d.obj.apiVersion} ${d.obj.kind} schema, field names`, p);

/** The document index and the field path (a.b[0].c) at a position of the generated source. */
function pathAt(sf, pos) {
  let node = sf;
  for (let next = node; next; ) {
    node = next;
    next = ts.forEachChild(node, (c) => (c.getStart(sf) <= pos && pos < c.getEnd() ? c : undefined));
  }
  const parts = [];
  for (let n = node; n; n = n.parent) {
    if (ts.isPropertyAssignment(n)) parts.unshift(`.${n.name.text ?? n.name.getText(sf)}`);
    else if (n.parent && ts.isArrayLiteralExpression(n.parent)) parts.unshift(`[${n.parent.elements.indexOf(n)}]`);
    else if (ts.isVariableDeclaration(n)) return { doc: Number(n.name.getText(sf).slice(3)), path: parts.join('').slice(1) };
  }
  return undefined;
}

// ---- Shardtrack's rules
const all = (kind) => docs.filter((d) => d.obj.kind === kind);
const sts = all('StatefulSet').find((d) => d.obj.metadata?.name === 'shardtrack');
if (!sts) {
  bad('no StatefulSet named shardtrack');
  process.exit(1);
}
const S = sts.obj;
const pod = S.spec?.template?.spec ?? {};
const podLabels = S.spec?.template?.metadata?.labels ?? {};
const c = (pod.containers ?? []).find((x) => x.name === 'shardtrack') ?? pod.containers?.[0] ?? {};
const csc = c.securityContext ?? {};
const psc = pod.securityContext ?? {};
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

// The namespace
const ns = all('Namespace')[0]?.obj.metadata?.name;
if (ns) rule(`every object in namespace ${ns}`, docs.filter((d) => !CLUSTER_SCOPED.has(d.obj.kind) && d.obj.metadata?.namespace !== ns).map(name));

// Security: the restricted Pod Security Standard, and the Dockerfile's user
{
  const [, uid, gid] = dockerfile.match(/^USER (\d+):(\d+)/m) ?? [];
  const p = [];
  for (const k of ['hostNetwork', 'hostPID', 'hostIPC']) if (pod[k]) p.push(`${k} is set`);
  for (const port of c.ports ?? []) if (port.hostPort !== undefined) p.push(`port ${port.name ?? port.containerPort} has a hostPort`);
  if ((csc.runAsNonRoot ?? psc.runAsNonRoot) !== true) p.push('runAsNonRoot is not true');
  if (String(csc.runAsUser ?? psc.runAsUser) !== uid || String(csc.runAsGroup ?? psc.runAsGroup) !== gid) p.push(`runAsUser/runAsGroup are not the Dockerfile's ${uid}:${gid}`);
  if (String(psc.fsGroup) !== gid) p.push(`fsGroup is not ${gid} (the data volume would not be writable)`);
  if ((csc.seccompProfile ?? psc.seccompProfile)?.type !== 'RuntimeDefault') p.push('seccompProfile is not RuntimeDefault');
  if (csc.allowPrivilegeEscalation !== false) p.push('allowPrivilegeEscalation is not false');
  if (csc.privileged === true) p.push('privileged');
  if (csc.readOnlyRootFilesystem !== true) p.push('readOnlyRootFilesystem is not true');
  if (!(csc.capabilities?.drop ?? []).includes('ALL')) p.push('capabilities do not drop ALL');
  if ((csc.capabilities?.add ?? []).length) p.push('capabilities are added');
  if (pod.automountServiceAccountToken !== false) p.push('a service account token is mounted');
  rule('pod: non-root (Dockerfile user), no privileges, read-only root, RuntimeDefault seccomp, no host namespaces or ports', p);
}
// Kubernetes adds <SERVICE>_PORT and the like for every Service of the namespace: for
// shardtrack-* Services those are unknown SHARDTRACK_ variables, which stop the tracker
rule('pod: enableServiceLinks is false (Service variables would be unknown SHARDTRACK_ settings)', pod.enableServiceLinks === false ? [] : ['it is not']);
rule('pod: 60 s or more to stop (ledger committed, checkpoint written)', pod.terminationGracePeriodSeconds >= 60 ? [] : [`terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds ?? 30}`]);
rule(
  'container: CPU and memory requests and limits',
  ['requests', 'limits'].flatMap((k) => ['cpu', 'memory'].filter((r) => c.resources?.[k]?.[r] === undefined).map((r) => `no ${k}.${r}`)),
);
rule(`image is shardtrack:${pkg.version} (package.json)`, c.image === `shardtrack:${pkg.version}` ? [] : [c.image]);

// The pod's environment, as the tracker sees it: the image's ENV, the ConfigMaps and Secrets of
// envFrom, then env (which wins); Secret values are stand-ins of the right shape, the pod name
// is the first pod's. Loaded by the tracker's own loader: unknown or bad settings fail here.
const secretExample = all('Secret')[0]?.obj;
const env = {};
const envProblems = [];
for (const [line] of dockerfile.matchAll(/^ENV .*$/gm)) for (const [, k, v] of line.matchAll(/\s([A-Za-z_][A-Za-z0-9_]*)=(\S+)/g)) env[k] = v;
const standIn = (k) => (/DATABASE(__)?_URL$/.test(k) ? 'postgres://shardtrack:x@db:5432/shardtrack' : /REDIS__URL$/.test(k) ? 'redis://:x@redis:6379/0' : 'a'.repeat(64));
const secretKey = (ref, where) => {
  if (!secretExample || secretExample.metadata?.name !== ref.name) envProblems.push(`${where}: Secret ${ref.name} is not in secret.example.yaml`);
  else if (!Object.hasOwn({ ...secretExample.stringData, ...secretExample.data }, ref.key)) envProblems.push(`${where}: secret.example.yaml has no key ${ref.key}`);
};
for (const from of c.envFrom ?? []) {
  if (from.configMapRef) {
    const cm = all('ConfigMap').find((d) => d.obj.metadata?.name === from.configMapRef.name);
    if (!cm) envProblems.push(`envFrom: no ConfigMap ${from.configMapRef.name}`);
    else Object.assign(env, cm.obj.data);
  } else if (from.secretRef) {
    if (secretExample?.metadata?.name !== from.secretRef.name) envProblems.push(`envFrom: Secret ${from.secretRef.name} is not in secret.example.yaml`);
    for (const k of Object.keys({ ...secretExample?.stringData, ...secretExample?.data })) env[k] = standIn(k);
  }
}
const seen = new Set();
for (const e of c.env ?? []) {
  if (seen.has(e.name)) envProblems.push(`${e.name} is set twice`);
  seen.add(e.name);
  const ref = e.valueFrom;
  if (ref?.secretKeyRef) {
    secretKey(ref.secretKeyRef, e.name);
    env[e.name] = standIn(e.name);
  } else if (ref?.fieldRef) env[e.name] = ref.fieldRef.fieldPath === 'metadata.name' ? `${S.metadata.name}-0` : 'x';
  else env[e.name] = e.value ?? '';
}
const nodeName = (c.env ?? []).find((e) => e.name === 'SHARDTRACK_REDIS__NODE_NAME');
if (nodeName?.valueFrom?.fieldRef?.fieldPath !== 'metadata.name') envProblems.push('SHARDTRACK_REDIS__NODE_NAME is not the pod name (fieldRef metadata.name): pods would share a Redis node name');
for (const k of ['SHARDTRACK_REDIS__URL', 'SHARDTRACK_UDP__CONNECTION_ID_SECRET', 'SHARDTRACK_ADMIN__METRICS_TOKEN']) {
  if (!(c.env ?? []).some((e) => e.name === k && e.valueFrom?.secretKeyRef)) envProblems.push(`${k} does not come from the Secret`);
}
if (!(c.env ?? []).some((e) => /^(SHARDTRACK_DATABASE__URL|DATABASE_URL)$/.test(e.name) && e.valueFrom?.secretKeyRef)) envProblems.push('no database URL from the Secret (the embedded database would be used, one per pod)');
rule('environment: node name, database, Redis, UDP secret and metrics token from the Secret', envProblems);

const configJs = join(root, 'dist/engine/config.js');
let config;
if (!existsSync(configJs)) bad('dist/engine/config.js is missing (the tracker\'s configuration loader): run make build first');
else {
  const { loadConfig } = await import(pathToFileURL(configJs).href);
  try {
    config = loadConfig({ argv: [], env });
    ok('environment: accepted by the tracker\'s configuration loader');
  } catch (e) {
    bad(`environment: the tracker would not start: ${e.message.replaceAll('\n', '; ')}`);
  }
}

// Ports: the image's EXPOSE, the container's ports and the tracker's listeners agree
const ports = c.ports ?? [];
const portOf = (ref) => ports.find((p) => (typeof ref === 'number' ? p.containerPort === ref : p.name === ref));
{
  const exposed = [...dockerfile.matchAll(/^EXPOSE (.+)$/gm)].flatMap((m) => m[1].trim().split(/\s+/)).map((x) => (x.includes('/') ? x : `${x}/tcp`).toUpperCase());
  const declared = ports.map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`);
  rule('container ports are the Dockerfile\'s EXPOSE', exposed.sort().join() === declared.sort().join() ? [] : [`EXPOSE ${exposed.join(' ')}, container ${declared.join(' ')}`]);
}
if (config) {
  const p = [];
  const want = (portName, protocol, value, key) => {
    const port = portOf(portName);
    if (!port) p.push(`no container port named ${portName}`);
    else if (port.containerPort !== value || (port.protocol ?? 'TCP') !== protocol) p.push(`${key} is ${value}, port ${portName} is ${port.containerPort}/${port.protocol ?? 'TCP'}`);
  };
  want('http', 'TCP', config.http.port, 'http.port');
  if (config.udp.port === 0) p.push('udp.port is 0 (UDP off)');
  else want('udp', 'UDP', config.udp.port, 'udp.port');
  if (!config.admin.enabled || config.admin.on_tracker_port) p.push('the admin listener is off or on the tracker port');
  else want('admin', 'TCP', config.admin.port, 'admin.port');
  const loopback = (h) => /^(127\.|::1$|localhost$)/.test(h);
  for (const k of ['http', 'udp', 'admin']) if (loopback(config[k].host)) p.push(`${k}.host ${config[k].host} is loopback: unreachable from the Services and probes`);
  rule('ports: the tracker listens where the container declares (http, udp, admin)', p);

  const claims = (S.spec.volumeClaimTemplates ?? []).map((t) => t.metadata?.name);
  const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === config.database.data_dir);
  rule(
    `data: database.data_dir ${config.database.data_dir} is a volume of its own per pod (volumeClaimTemplates)`,
    mount && claims.includes(mount.name) && !mount.readOnly ? [] : [mount ? `${mount.name} is not a volumeClaimTemplate (or is read-only)` : 'not mounted'],
  );
}
rule(
  'volumes: every mount has a volume',
  (c.volumeMounts ?? []).filter((m) => ![...(pod.volumes ?? []), ...(S.spec.volumeClaimTemplates ?? []).map((t) => t.metadata)].some((v) => v?.name === m.name)).map((m) => m.name),
);

// Probes: /ready for readiness, /health for liveness and start-up, on the admin listener
{
  const p = [];
  const adminPort = config?.admin.port ?? portOf('admin')?.containerPort;
  for (const [k, path] of [['readinessProbe', '/ready'], ['livenessProbe', '/health'], ['startupProbe', '/health']]) {
    const get = c[k]?.httpGet;
    if (!get) p.push(`no ${k} (HTTP GET)`);
    else if (get.path !== path) p.push(`${k} asks ${get.path}, not ${path}`);
    else if (portOf(get.port)?.containerPort !== adminPort) p.push(`${k} is not on the admin port (${adminPort})`);
  }
  rule('probes: readiness GET /ready, liveness and start-up GET /health, on the admin listener', p);
}

// Services: selectors match the pods, targets are the container's ports
const services = all('Service');
{
  const p = [];
  for (const d of services) {
    const sel = d.obj.spec?.selector ?? {};
    if (!Object.keys(sel).length) p.push(`${d.obj.metadata.name} has no selector`);
    else if (Object.entries(sel).some(([k, v]) => podLabels[k] !== v)) p.push(`${d.obj.metadata.name}'s selector does not match the pods`);
    for (const sp of d.obj.spec?.ports ?? []) {
      const target = portOf(sp.targetPort ?? sp.port);
      if (!target) p.push(`${d.obj.metadata.name} port ${sp.name ?? sp.port}: target ${sp.targetPort ?? sp.port} is no container port`);
      else if ((target.protocol ?? 'TCP') !== (sp.protocol ?? 'TCP')) p.push(`${d.obj.metadata.name} port ${sp.name ?? sp.port}: ${sp.protocol ?? 'TCP'} to a ${target.protocol ?? 'TCP'} port`);
    }
  }
  for (const d of all('PodDisruptionBudget')) {
    if (Object.entries(d.obj.spec?.selector?.matchLabels ?? {}).some(([k, v]) => podLabels[k] !== v)) p.push(`PodDisruptionBudget ${d.obj.metadata.name}'s selector does not match the pods`);
  }
  rule('Services and PodDisruptionBudget select the tracker pods and target their ports', p);
}
const targets = (d, portName) => (d.obj.spec?.ports ?? []).some((sp) => portOf(sp.targetPort ?? sp.port)?.name === portName);
const exposedOutside = (d) => ['LoadBalancer', 'NodePort'].includes(d.obj.spec?.type);
{
  const udp = services.filter((d) => targets(d, 'udp'));
  rule(
    'UDP: a LoadBalancer Service with externalTrafficPolicy Local (client addresses kept)',
    udp.length === 0 ? ['no Service for the udp port'] : udp.filter((d) => !(exposedOutside(d) && d.obj.spec.type === 'LoadBalancer' && d.obj.spec.externalTrafficPolicy === 'Local')).map((d) => `${d.obj.metadata.name} is not`),
  );
  const http = services.filter((d) => targets(d, 'http'));
  rule(
    'HTTP/WebSocket: a Service, and no NodePort/LoadBalancer that hides client addresses',
    http.length === 0 ? ['no Service for the http port'] : http.filter((d) => exposedOutside(d) && d.obj.spec.externalTrafficPolicy !== 'Local').map((d) => `${d.obj.metadata.name} is exposed with externalTrafficPolicy Cluster`),
  );
  const admin = services.filter((d) => targets(d, 'admin'));
  rule('admin listener: Services inside the cluster only (ClusterIP)', admin.length === 0 ? ['no Service for the admin port'] : admin.filter(exposedOutside).map((d) => `${d.obj.metadata.name} is ${d.obj.spec.type}`));
  const headless = services.find((d) => d.obj.metadata?.name === S.spec.serviceName);
  rule(`headless Service ${S.spec.serviceName} (the StatefulSet's serviceName)`, headless?.obj.spec?.clusterIP === 'None' ? [] : [headless ? 'its clusterIP is not None' : 'missing']);
}

// kustomization.yaml: every manifest but the example Secret, and only files that exist
if (!kustomization) bad('no kustomization.yaml');
else {
  const listed = kustomization.obj.resources ?? [];
  const p = listed.filter((r) => !existsSync(join(dir, r))).map((r) => `${r} does not exist`);
  const secretFiles = new Set(all('Secret').map((d) => d.file));
  for (const r of listed) if (secretFiles.has(basename(r))) p.push(`${r} holds a Secret: example values would be applied`);
  for (const f of new Set(docs.map((d) => d.file))) if (!secretFiles.has(f) && !listed.includes(f)) p.push(`${f} is not listed`);
  rule(`${kustomization.file}: lists every manifest but the Secret`, p);
}

process.exit(failed ? 1 : 0);
