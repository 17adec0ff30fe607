// SPDX-License-Identifier: MIT
// Offline checks of Kubernetes manifests, no API server needed:
//  1. kubernetes-models (4.5.1, the Kubernetes API's schemas): types, required fields, enums;
//  2. a strict ajv pass: every object's field names, unknown or misspelt ones rejected (the
//     models let those through); its schemas are made from the models' own type declarations;
//  3. MPIJob (kubeflow.org/v2beta1): ajv against the MPI Operator's published CRD schema
//     (schemas/, copied with its source and licence), unknown fields rejected likewise;
//  4. what the deployment promises: every pod template hardened (non-root, read-only root
//     filesystem, all capabilities dropped, no privilege escalation, RuntimeDefault seccomp) and
//     every container with resource requests and limits.
// checkDoc(doc) returns a list of error strings (empty: valid).
import { readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "package.json"));
const Ajv = require("ajv");
const modulesDir = path.join(here, "node_modules");

const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addFormat("int32", { type: "number", validate: (x) => Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 31 });
ajv.addFormat("int64", { type: "number", validate: (x) => Number.isInteger(x) });
ajv.addFormat("date-time", { type: "string", validate: (s) => !Number.isNaN(Date.parse(s)) });

// ---- strict field names from kubernetes-models' .d.ts files ----------------------------------
const dtsSchemas = new Map(); // file -> schema id

function resolveDts(fromFile, spec) {
  const base = spec.startsWith(".") ? path.resolve(path.dirname(fromFile), spec) : path.join(modulesDir, spec);
  return base + ".d.ts";
}

// Schema for one TypeScript type expression found in a declaration file.
function typeSchema(type, imports, file) {
  type = type.trim();
  let m;
  if ((m = /^Array<(.*)>$/.exec(type))) return { type: "array", items: typeSchema(m[1], imports, file) };
  if ((m = /^\{\s*\[key: string\]:\s*(.*?);?\s*\}$/s.exec(type)))
    return { type: "object", additionalProperties: typeSchema(m[1], imports, file) };
  if (imports.has(type)) return { $ref: interfaceSchema(resolveDts(file, imports.get(type))) };
  return {}; // primitives, literals, unions: kubernetes-models checks those
}

// Registers the schema of the interface declared in `file` (or {} for a type alias); returns its id.
function interfaceSchema(file) {
  if (dtsSchemas.has(file)) return dtsSchemas.get(file);
  const id = "dts:" + path.relative(modulesDir, file);
  dtsSchemas.set(file, id);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ ([^}]*) \} from "([^"]+)";$/gm))
    for (const name of m[1].split(",").map((s) => s.trim()))
      if (!m[2].startsWith("@kubernetes-models/base")) imports.set(name, m[2]);
  const body = /^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m.exec(text);
  if (!body) {
    ajv.addSchema({ $id: id }, id);
    return id;
  }
  const properties = {};
  const lines = body[1].split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]);
    if (!m) continue;
    let type = m[2];
    if (type === "{") {
      // A map type over several lines: { [key: string]: T; };
      while (!/^ {4}\};$/.test(lines[i])) type += lines[++i].trim();
      type = type.replace(/;$/, "");
    } else {
      type = type.replace(/;$/, "");
    }
    properties[m[1]] = typeSchema(type, imports, file);
  }
  ajv.addSchema({ $id: id, type: "object", properties, additionalProperties: false }, id);
  return id;
}

// ---- the MPI Operator's CRD ----------------------------------------------------------------
// Reject unknown fields wherever the CRD lists the fields (as the API server prunes or, with
// strict field validation, rejects them); keep its int-or-string fields.
function strictCrd(s) {
  if (Array.isArray(s)) return s.map(strictCrd);
  if (!s || typeof s !== "object") return s;
  const out = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === "properties" || k === "patternProperties")
      out[k] = Object.fromEntries(Object.entries(v).map(([n, p]) => [n, strictCrd(p)]));
    else out[k] = strictCrd(v);
  }
  if (s["x-kubernetes-int-or-string"]) {
    delete out.type;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  if (s.properties && s.additionalProperties === undefined && !s["x-kubernetes-preserve-unknown-fields"])
    out.additionalProperties = false;
  return out;
}

const crds = new Map();
function crdValidator(apiVersion, kind) {
  const key = apiVersion + "/" + kind;
  if (!crds.has(key)) {
    let v = null;
    if (key === "kubeflow.org/v2beta1/MPIJob") {
      const doc = JSON.parse(readFileSync(path.join(here, "schemas/kubeflow.org_mpijobs.v2beta1.json"), "utf8"));
      const schema = strictCrd(doc.openAPIV3Schema);
      schema.properties.apiVersion = { const: apiVersion };
      schema.properties.kind = { const: kind };
      schema.required = ["apiVersion", "kind", "metadata", ...(schema.required || [])];
      v = ajv.compile(schema);
    }
    crds.set(key, v);
  }
  return crds.get(key);
}

function ajvErrors(errors) {
  return errors.map((e) => {
    const extra = e.keyword === "additionalProperties" ? ` '${e.params.additionalProperty}'` : "";
    return `${e.instancePath || "/"}: ${e.message}${extra}`;
  });
}

function modelErrors(Model, doc) {
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    return [String(e.message || e).split("\n").join("; ")];
  }
}

// ---- what the deployment promises -----------------------------------------------------------
function podSpecs(doc) {
  const s = doc.spec || {};
  switch (doc.kind) {
    case "StatefulSet":
    case "Deployment":
    case "Job":
      return [["spec.template.spec", s.template?.spec]];
    case "CronJob":
      return [["spec.jobTemplate.spec.template.spec", s.jobTemplate?.spec?.template?.spec]];
    case "MPIJob":
      return Object.entries(s.mpiReplicaSpecs || {}).map(([r, rs]) => [`spec.mpiReplicaSpecs.${r}.template.spec`, rs?.template?.spec]);
    default:
      return [];
  }
}

function policyErrors(doc) {
  const errs = [];
  for (const [where, pod] of podSpecs(doc)) {
    if (!pod) continue;
    const psc = pod.securityContext || {};
    if (psc.runAsNonRoot !== true) errs.push(`${where}.securityContext.runAsNonRoot must be true`);
    if (psc.seccompProfile?.type !== "RuntimeDefault")
      errs.push(`${where}.securityContext.seccompProfile.type must be RuntimeDefault`);
    for (const list of ["initContainers", "containers"]) {
      for (const [i, c] of (pod[list] || []).entries()) {
        const at = `${where}.${list}[${i}] (${c.name})`;
        const sc = c.securityContext || {};
        if (sc.allowPrivilegeEscalation !== false) errs.push(`${at}: allowPrivilegeEscalation must be false`);
        if (sc.readOnlyRootFilesystem !== true) errs.push(`${at}: readOnlyRootFilesystem must be true`);
        if (sc.privileged === true) errs.push(`${at}: privileged`);
        if (!(sc.capabilities?.drop || []).includes("ALL")) errs.push(`${at}: capabilities must drop ALL`);
        if ((sc.capabilities?.add || []).length) errs.push(`${at}: adds capabilities`);
        if (!c.resources?.requests || !c.resources?.limits) errs.push(`${at}: needs resources.requests and .limits`);
      }
    }
  }
  return errs;
}

// ---- one document -----------------------------------------------------------------------------
export function checkDoc(doc) {
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) return ["not a mapping"];
  const { apiVersion, kind } = doc;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return ["apiVersion and kind are required"];
  const errs = [];
  const crd = crdValidator(apiVersion, kind);
  if (crd) {
    if (!crd(doc)) errs.push(...ajvErrors(crd.errors));
    // The CRD says only "metadata: object": check it as the API server would.
    const { ObjectMeta } = require("@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta");
    const metaFile = path.join(modulesDir, "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta.d.ts");
    errs.push(...modelErrors(ObjectMeta, doc.metadata || {}).map((e) => "/metadata: " + e));
    const strict = ajv.getSchema(interfaceSchema(metaFile));
    if (!strict(doc.metadata || {})) errs.push(...ajvErrors(strict.errors).map((e) => "/metadata" + e));
    if (!doc.metadata?.name) errs.push("/metadata: name is required");
  } else {
    const modelPath = `kubernetes-models/${apiVersion}/${kind}`;
    const dts = path.join(modulesDir, modelPath + ".d.ts");
    if (!/^[\w.]+(\/\w+)?$/.test(apiVersion) || !/^\w+$/.test(kind) || !existsSync(dts))
      return [`unknown kind ${apiVersion} ${kind}`];
    const Model = require(modelPath)[kind];
    errs.push(...modelErrors(Model, doc));
    const strict = ajv.getSchema(interfaceSchema(dts));
    if (!strict(doc)) errs.push(...ajvErrors(strict.errors));
    if (!doc.metadata?.name) errs.push("/metadata: name is required");
  }
  errs.push(...policyErrors(doc));
  return errs;
}

// ---- kustomization.yaml -----------------------------------------------------------------------
const kustomizeFields = {
  apiVersion: {}, kind: {}, namespace: {}, namePrefix: {}, nameSuffix: {}, resources: {},
  components: {}, images: {}, labels: {}, commonLabels: {}, commonAnnotations: {},
  configMapGenerator: {}, secretGenerator: {}, generatorOptions: {}, patches: {}, replicas: {},
};
export function checkKustomization(doc) {
  const errs = [];
  if (!doc || typeof doc !== "object") return ["not a mapping"];
  if (doc.apiVersion !== "kustomize.config.k8s.io/v1beta1") errs.push("apiVersion must be kustomize.config.k8s.io/v1beta1");
  if (doc.kind !== "Kustomization") errs.push("kind must be Kustomization");
  for (const k of Object.keys(doc)) if (!(k in kustomizeFields)) errs.push(`unknown field '${k}'`);
  if (!Array.isArray(doc.resources) || doc.resources.some((r) => typeof r !== "string"))
    errs.push("resources must be a list of file names");
  for (const [i, im] of (doc.images || []).entries())
    for (const k of Object.keys(im || {}))
      if (!["name", "newName", "newTag", "digest"].includes(k)) errs.push(`images[${i}]: unknown field '${k}'`);
  return errs;
}
