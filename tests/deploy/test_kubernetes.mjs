// SPDX-License-Identifier: MIT
// Every manifest under deploy/kubernetes/ is valid offline (k8s-check.mjs: the Kubernetes API
// schemas from kubernetes-models, unknown fields rejected by ajv, the MPIJob against the MPI
// Operator's CRD, the hardening every pod promises), every file is listed in its kustomization,
// and a deliberately broken copy of each kind is rejected by the same check, for the reason
// that was broken. Installs its npm packages into tests/deploy/node_modules when missing.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const src = process.env.DIP_SOURCE_DIR || path.resolve(here, "../..");
if (!existsSync(path.join(here, "node_modules/kubernetes-models/package.json"))) {
  console.log("installing tests/deploy/node_modules (npm ci)");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: here, stdio: "inherit" });
}
const { checkDoc, checkKustomization } = await import("./k8s-check.mjs");
const YAML = (await import(path.join(here, "node_modules/yaml/dist/index.js"))).default;

let failures = 0;
function fail(msg) {
  console.log("FAIL: " + msg);
  failures++;
}

function parseAll(file) {
  const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true });
  const out = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join("; ")}`);
    const v = d.toJS();
    if (v !== null) out.push(v);
  }
  return out;
}

// ---- the real manifests -----------------------------------------------------------------------
const byKind = new Map(); // kind -> first document of that kind (for the broken copies)
for (const dir of ["deploy/kubernetes", "deploy/kubernetes/mpijob"]) {
  const abs = path.join(src, dir);
  const kust = parseAll(path.join(abs, "kustomization.yaml"))[0];
  const kerr = checkKustomization(kust);
  if (kerr.length) fail(`${dir}/kustomization.yaml: ${kerr.join("; ")}`);
  byKind.set("Kustomization", byKind.get("Kustomization") || kust);
  const listed = new Set(kust.resources || []);
  for (const f of readdirSync(abs).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml"))
    if (!listed.has(f)) fail(`${dir}/${f} is not listed in ${dir}/kustomization.yaml`);
  const imageNames = new Set((kust.images || []).map((i) => i.name));
  for (const f of listed) {
    const docs = parseAll(path.join(abs, f));
    if (!docs.length) fail(`${dir}/${f}: no documents`);
    for (const doc of docs) {
      const errs = checkDoc(doc);
      const what = `${doc.kind}/${doc.metadata?.name} (${dir}/${f})`;
      if (errs.length) fail(`${what}:\n    ${errs.join("\n    ")}`);
      else console.log(`ok ${what}`);
      if (!byKind.has(doc.kind)) byKind.set(doc.kind, doc);
      // Each image a pod names must be one the kustomization sets.
      const pods = JSON.stringify(doc).matchAll(/"image":"([^"]+)"/g);
      for (const [, img] of pods) if (!imageNames.has(img)) fail(`${what}: image '${img}' is not in ${dir}/kustomization.yaml's images`);
    }
  }
}

// ---- what kustomize renders (when a kubectl with kustomize is installed) ----------------------
// The documents actually applied: namespace set, image names replaced.
let kubectl = null;
try {
  execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
  kubectl = "kubectl";
} catch {
  console.log("kubectl not installed: rendering with kustomize not checked");
}
if (kubectl) {
  for (const dir of ["deploy/kubernetes", "deploy/kubernetes/mpijob"]) {
    let out;
    try {
      out = execFileSync(kubectl, ["kustomize", path.join(src, dir)], { stdio: ["ignore", "pipe", "pipe"] }).toString();
    } catch (e) {
      fail(`kubectl kustomize ${dir}: ${e.stderr}`);
      continue;
    }
    const docs = YAML.parseAllDocuments(out).map((d) => d.toJS()).filter((d) => d);
    for (const doc of docs) {
      const errs = checkDoc(doc);
      if (doc.kind !== "Namespace" && doc.metadata?.namespace !== "dip") errs.push("rendered without namespace dip");
      for (const [, img] of JSON.stringify(doc).matchAll(/"image":"([^"]+)"/g))
        if (!img.includes("/")) errs.push(`image '${img}' not replaced by the kustomization`);
      if (errs.length) fail(`rendered ${doc.kind}/${doc.metadata?.name} (${dir}):\n    ${errs.join("\n    ")}`);
    }
    console.log(`ok kubectl kustomize ${dir}: ${docs.length} documents`);
  }
}

// ---- broken copies: each must be rejected, with the broken path in the message -----------------
const clone = (x) => JSON.parse(JSON.stringify(x));
const broken = [
  ["Namespace", "unknown field", "lables", (d) => { d.metadata.lables = d.metadata.labels; delete d.metadata.labels; }],
  ["ServiceAccount", "wrong type", "automountServiceAccountToken", (d) => { d.automountServiceAccountToken = "no"; }],
  ["ConfigMap", "wrong type", "DIP_THREADS", (d) => { d.data.DIP_THREADS = 4; }],
  ["Secret", "unknown field", "stringdata", (d) => { d.stringdata = d.stringData; delete d.stringData; }],
  ["StatefulSet", "misspelt probe field", "prot", (d) => {
    const p = d.spec.template.spec.containers[0].livenessProbe.httpGet; p.prot = p.port; delete p.port; }],
  ["StatefulSet", "missing required selector", "selector", (d) => { delete d.spec.selector; }],
  ["StatefulSet", "not hardened", "readOnlyRootFilesystem", (d) => {
    delete d.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem; }],
  ["Service", "bad enum", "protocol", (d) => { d.spec.ports[0].protocol = "HTTP"; }],
  ["Ingress", "bad enum", "pathType", (d) => { d.spec.rules[0].http.paths[0].pathType = "Prefixed"; }],
  ["NetworkPolicy", "unknown field", "podselector", (d) => { d.spec.podselector = d.spec.podSelector; delete d.spec.podSelector; }],
  ["PodDisruptionBudget", "wrong type", "minAvailable", (d) => { d.spec.minAvailable = true; }],
  ["PersistentVolumeClaim", "wrong type", "accessModes", (d) => { d.spec.accessModes = "ReadWriteOnce"; }],
  ["CronJob", "missing required jobTemplate", "jobTemplate", (d) => { delete d.spec.jobTemplate; }],
  ["CronJob", "unknown field in the pod", "volumeMount", (d) => {
    const c = d.spec.jobTemplate.spec.template.spec.containers[0]; c.volumeMount = c.volumeMounts; delete c.volumeMounts; }],
  ["MPIJob", "unknown field", "slotsPerWorkers", (d) => { d.spec.slotsPerWorkers = d.spec.slotsPerWorker; delete d.spec.slotsPerWorker; }],
  ["MPIJob", "wrong type", "replicas", (d) => { d.spec.mpiReplicaSpecs.Worker.replicas = "4"; }],
  ["MPIJob", "bad enum", "mpiImplementation", (d) => { d.spec.mpiImplementation = "OpenMP"; }],
  ["MPIJob", "unknown field in the worker pod", "comand", (d) => {
    const c = d.spec.mpiReplicaSpecs.Worker.template.spec.containers[0]; c.comand = c.command; delete c.command; }],
  ["MPIJob", "missing required mpiReplicaSpecs", "mpiReplicaSpecs", (d) => { delete d.spec.mpiReplicaSpecs; }],
  ["Kustomization", "unknown field", "resource", (d) => { d.resource = d.resources; delete d.resources; }],
];
const kindsBroken = new Set();
for (const [kind, why, needle, mutate] of broken) {
  const orig = byKind.get(kind);
  if (!orig) {
    fail(`no ${kind} among the manifests to break`);
    continue;
  }
  const d = clone(orig);
  mutate(d);
  const errs = kind === "Kustomization" ? checkKustomization(d) : checkDoc(d);
  if (!errs.length) fail(`broken ${kind} (${why}) was accepted`);
  else if (!errs.some((e) => e.includes(needle))) fail(`broken ${kind} (${why}) rejected, but not for '${needle}': ${errs.join("; ")}`);
  else console.log(`rejected broken ${kind} (${why}): ${errs.find((e) => e.includes(needle))}`);
  kindsBroken.add(kind);
}
for (const kind of byKind.keys()) if (!kindsBroken.has(kind)) fail(`no broken copy of ${kind}`);

if (failures) {
  console.log(`${failures} failure(s)`);
  process.exit(1);
}
console.log("PASS");
