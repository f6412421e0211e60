// Validates deploy/kubernetes offline: every object against the Kubernetes schemas (npm package
// kubernetes-models), the kustomization's files, and the references between objects (Services
// select their pods, StatefulSets name their Service, mounts name volumes, volumes name claims,
// ConfigMaps and Secrets that exist here or are created as the README says). Exit 1 with one
// line per problem.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');

const dir = process.argv[2];
const problems = [];
const problem = (what) => problems.push(what);

// Secrets the README has the operator create (never in the repository).
const documentedSecrets = new Set(['mmx-tls', 'mmx-api-keys', 'mmx-join-token']);
const models = {
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'apps/v1/StatefulSet': 'kubernetes-models/apps/v1/StatefulSet',
  'v1/Service': 'kubernetes-models/v1/Service',
  'v1/PersistentVolumeClaim': 'kubernetes-models/v1/PersistentVolumeClaim',
  'v1/Namespace': 'kubernetes-models/v1/Namespace',
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
};

const kustomization = YAML.parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
const objects = [];
for (const file of kustomization.resources || []) {
  const full = path.join(dir, file);
  if (!fs.existsSync(full)) { problem(`kustomization.yaml: resource ${file} does not exist`); continue; }
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(full, 'utf8'))) {
    if (doc.errors.length) { problem(`${file}: ${doc.errors[0].message}`); continue; }
    const obj = doc.toJS();
    if (obj) objects.push({file, obj});
  }
}
const configMaps = new Set();
for (const gen of kustomization.configMapGenerator || []) {
  configMaps.add(gen.name);
  for (const f of gen.files || []) {
    if (!fs.existsSync(path.join(dir, f))) problem(`kustomization.yaml: configMapGenerator file ${f} does not exist`);
    else objects.push({file: f, obj: {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: gen.name},
                                      data: {[f]: fs.readFileSync(path.join(dir, f), 'utf8')}}});
  }
}

for (const {file, obj} of objects) {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const module = models[key];
  if (!module) { problem(`${file}: no schema for ${key}`); continue; }
  const Model = Object.values(require(module)).find((v) => typeof v === 'function');
  try {
    new Model(obj).validate();
  } catch (e) {
    problem(`${file}: ${obj.kind} ${obj.metadata && obj.metadata.name}: ${e.message}`);
  }
}

const byKind = (kind) => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
const claims = new Set(byKind('PersistentVolumeClaim').map((c) => c.metadata.name));
const matches = (selector, labels) => Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
const workloads = [...byKind('Deployment'), ...byKind('StatefulSet')];
for (const w of workloads) {
  const name = `${w.kind} ${w.metadata.name}`;
  const pod = w.spec.template;
  if (!matches(w.spec.selector.matchLabels, pod.metadata.labels)) problem(`${name}: selector does not match its pods`);
  const volumes = new Map((pod.spec.volumes || []).map((v) => [v.name, v]));
  for (const v of volumes.values()) {
    if (v.persistentVolumeClaim && !claims.has(v.persistentVolumeClaim.claimName)) {
      problem(`${name}: volume ${v.name} claims ${v.persistentVolumeClaim.claimName}, which is not defined`);
    }
    if (v.configMap && !configMaps.has(v.configMap.name)) problem(`${name}: no ConfigMap ${v.configMap.name}`);
    if (v.secret && !documentedSecrets.has(v.secret.secretName)) problem(`${name}: Secret ${v.secret.secretName} is not documented`);
  }
  for (const c of pod.spec.containers) {
    const mounts = new Map((c.volumeMounts || []).map((m) => [m.mountPath, m]));
    for (const m of mounts.values()) if (!volumes.has(m.name)) problem(`${name}: mount ${m.mountPath} names no volume ${m.name}`);
    // Every file a flag names lies under a mount.
    for (const arg of c.args || []) {
      const file = /^--[a-z-]+=(\/.+)$/.exec(arg);
      if (!file || file[1].startsWith('/var/lib/mmx')) continue;
      if (![...mounts.keys()].some((p) => file[1].startsWith(p + '/'))) problem(`${name}: ${arg} is under no mount`);
    }
    const ports = new Set((c.ports || []).map((p) => p.name));
    for (const probe of [c.readinessProbe, c.livenessProbe].filter(Boolean)) {
      const port = (probe.httpGet || probe.tcpSocket || probe.grpc || {}).port;
      if (typeof port === 'string' && !ports.has(port)) problem(`${name}: a probe uses port ${port}, which is not declared`);
    }
  }
  if (w.kind === 'StatefulSet' && !byKind('Service').some((s) => s.metadata.name === w.spec.serviceName)) {
    problem(`${name}: serviceName ${w.spec.serviceName} is no Service here`);
  }
}
for (const s of byKind('Service')) {
  const fronted = workloads.filter((w) => matches(s.spec.selector, w.spec.template.metadata.labels));
  if (fronted.length === 0) problem(`Service ${s.metadata.name}: selects no pods`);
  for (const p of s.spec.ports) {
    if (typeof p.targetPort !== 'string') continue;
    for (const w of fronted) {
      if (!w.spec.template.spec.containers.some((c) => (c.ports || []).some((cp) => cp.name === p.targetPort))) {
        problem(`Service ${s.metadata.name}: targetPort ${p.targetPort} is no port of ${w.metadata.name}`);
      }
    }
  }
}
// The shard config's entries are the worker pods' names.
const shard = YAML.parse(fs.readFileSync(path.join(dir, 'shard-config.yaml'), 'utf8'));
for (const ss of byKind('StatefulSet')) {
  const pods = Array.from({length: ss.spec.replicas}, (_, i) => `${ss.metadata.name}-${i}`);
  const entries = shard.workers.map((w) => w.name);
  if (JSON.stringify(pods) !== JSON.stringify(entries)) {
    problem(`StatefulSet ${ss.metadata.name}: pods ${pods.join(',')} but shard-config.yaml entries ${entries.join(',')}`);
  }
}

if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`check_kubernetes: ${objects.length} objects valid, references consistent`);
