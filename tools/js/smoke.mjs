// Smoke test of a Gantry server through a second real client, the OCI
// TypeScript SDK from npm: sign in with the data directory's OCI config,
// upload a dataset, create a fine-tuning cluster and a model, and read
// them back. Usage:
//
//   NODE_PATH=tools/js/node_modules node tools/js/smoke.mjs ENDPOINT CONFIG_FILE
//
// It prints one JSON object with what it saw and exits 0 when every
// check passed, 1 otherwise (the failed check on stderr).
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const common = require("oci-common");
const os = require("oci-objectstorage");
const genai = require("oci-generativeai");

const [endpoint, configFile] = process.argv.slice(2);
if (!endpoint || !configFile) {
  console.error("usage: node smoke.mjs ENDPOINT CONFIG_FILE");
  process.exit(2);
}

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

// readProfile reads the DEFAULT profile of an OCI config file.
function readProfile(file) {
  const out = {};
  let section = "";
  for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (line.startsWith("[") && line.endsWith("]")) { section = line.slice(1, -1); continue; }
    const eq = line.indexOf("=");
    if (section === "DEFAULT" && eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  for (const k of ["user", "fingerprint", "tenancy", "key_file", "region"]) check(out[k], `config has ${k}`);
  if (!path.isAbsolute(out.key_file)) out.key_file = path.join(path.dirname(file), out.key_file);
  return out;
}

async function readBody(value) {
  if (typeof value === "string") return value;
  if (value && typeof value.getReader === "function") return await new Response(value).text();
  const chunks = [];
  for await (const c of value) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString("utf8");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const p = readProfile(configFile);
  const provider = new common.SimpleAuthenticationDetailsProvider(
    p.tenancy, p.user, p.fingerprint, fs.readFileSync(p.key_file, "utf8"), null,
    common.Region.fromRegionId(p.region));
  // Each call once, with no circuit breaker: errors as the server sent them.
  common.CircuitBreaker.EnableGlobalCircuitBreaker = false;
  const clientConfiguration = { retryConfiguration: common.NoRetryConfigurationDetails, circuitBreaker: { noCircuit: true } };
  const osClient = new os.ObjectStorageClient({ authenticationDetailsProvider: provider }, clientConfiguration);
  osClient.endpoint = endpoint;
  const ai = new genai.GenerativeAiClient({ authenticationDetailsProvider: provider }, clientConfiguration);
  ai.endpoint = endpoint;
  const result = {};

  // Sign in: the namespace of the caller's tenancy.
  const ns = (await osClient.getNamespace({})).value;
  check(typeof ns === "string" && ns.length > 0, "getNamespace returns a namespace");
  result.namespace = ns;

  // Upload a dataset and read it back.
  const bucketName = "smoke-" + Date.now();
  const bucket = await osClient.createBucket({ namespaceName: ns, createBucketDetails: { name: bucketName, compartmentId: p.tenancy } });
  check(bucket.bucket.name === bucketName && bucket.eTag, "createBucket returns the bucket and an etag");
  let dataset = "";
  for (let i = 0; i < 40; i++) dataset += JSON.stringify({ prompt: `What is ${i} + ${i}?`, completion: `${2 * i}` }) + "\n";
  const put = await osClient.putObject({
    namespaceName: ns, bucketName, objectName: "train/data.jsonl",
    putObjectBody: dataset, contentLength: Buffer.byteLength(dataset), contentType: "application/jsonl",
  });
  check(put.eTag && put.opcContentMd5, "putObject returns etag and opc-content-md5");
  const head = await osClient.headObject({ namespaceName: ns, bucketName, objectName: "train/data.jsonl" });
  check(Number(head.contentLength) === Buffer.byteLength(dataset), "headObject content-length");
  const got = await osClient.getObject({ namespaceName: ns, bucketName, objectName: "train/data.jsonl" });
  check((await readBody(got.value)) === dataset, "getObject returns the uploaded bytes");
  const listed = await osClient.listObjects({ namespaceName: ns, bucketName, fields: "name,size" });
  check(listed.listObjects.objects.length === 1 && listed.listObjects.objects[0].name === "train/data.jsonl", "listObjects lists the dataset");
  result.dataset = { bucket: bucketName, object: "train/data.jsonl", etag: put.eTag, size: Buffer.byteLength(dataset) };

  // A multipart upload through the SDK's UploadManager (UploadPart bodies
  // are sent unsigned, as for PutObject).
  const big = Buffer.alloc(400 * 1024 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 9)) & 0xff;
  const bigPath = path.join(fs.mkdtempSync(path.join(process.env.TMPDIR || "/tmp", "smoke-")), "big.bin");
  fs.writeFileSync(bigPath, big);
  const um = new os.UploadManager(osClient, { partSize: 128 * 1024, enforceMD5: true });
  const up = await um.upload({ content: { filePath: bigPath }, requestDetails: { namespaceName: ns, bucketName, objectName: "big/blob.bin" } });
  check(up.multipartMd5 && up.multipartMd5.endsWith("-4"), `multipart upload of 4 parts (got ${JSON.stringify(up)})`);
  const gotBig = await osClient.getObject({ namespaceName: ns, bucketName, objectName: "big/blob.bin" });
  const chunks = [];
  for await (const c of (gotBig.value.getReader ? (async function* (r) { for (;;) { const { done, value } = await r.read(); if (done) return; yield value; } })(gotBig.value.getReader()) : gotBig.value)) chunks.push(Buffer.from(c));
  check(Buffer.concat(chunks).equals(big), "the multipart object reads back byte for byte");
  fs.rmSync(path.dirname(bigPath), { recursive: true, force: true });
  result.multipart = { object: "big/blob.bin", size: big.length, md5: up.multipartMd5 };

  // A fine-tuning cluster, ACTIVE through its work request.
  const cc = await ai.createDedicatedAiCluster({
    createDedicatedAiClusterDetails: { compartmentId: p.tenancy, type: "FINE_TUNING", unitShape: "LARGE_GENERIC", unitCount: 1, displayName: "smoke-cluster" },
  });
  check(cc.opcWorkRequestId && cc.dedicatedAiCluster.id, "createDedicatedAiCluster returns the cluster and a work request");
  let cluster;
  for (let i = 0; i < 100; i++) {
    cluster = (await ai.getDedicatedAiCluster({ dedicatedAiClusterId: cc.dedicatedAiCluster.id })).dedicatedAiCluster;
    if (cluster.lifecycleState !== "CREATING") break;
    await sleep(100);
  }
  check(cluster.lifecycleState === "ACTIVE", `cluster is ACTIVE (is ${cluster.lifecycleState})`);
  result.cluster = { id: cluster.id, lifecycleState: cluster.lifecycleState, unitShape: cluster.unitShape };

  // A base model to fine-tune.
  const models = await ai.listModels({ compartmentId: p.tenancy, capability: ["FINE_TUNE"] });
  const base = models.modelCollection.items.find((m) => m.type === "BASE");
  check(base, "listModels shows a BASE model with FINE_TUNE");

  // A custom model, read back.
  const cm = await ai.createModel({
    createModelDetails: {
      compartmentId: p.tenancy, baseModelId: base.id, displayName: "smoke-model", version: "1",
      fineTuneDetails: {
        dedicatedAiClusterId: cluster.id,
        trainingDataset: { datasetType: "OBJECT_STORAGE", namespaceName: ns, bucketName, objectName: "train/data.jsonl" },
        trainingConfig: { trainingConfigType: "LORA_TRAINING_CONFIG", totalTrainingEpochs: 1, loraR: 4 },
      },
    },
  });
  check(cm.opcWorkRequestId && cm.model.id, "createModel returns the model and a work request");
  const gm = (await ai.getModel({ modelId: cm.model.id })).model;
  check(gm.displayName === "smoke-model" && gm.type === "CUSTOM", "getModel returns the custom model");
  const tc = gm.fineTuneDetails.trainingConfig;
  check(tc.trainingConfigType === "LORA_TRAINING_CONFIG" && tc.totalTrainingEpochs === 1 && tc.loraR === 4 && tc.loraAlpha === 8,
    "the stored training config shows the values used (given and defaulted)");
  check(gm.fineTuneDetails.trainingDataset.objectName === "train/data.jsonl", "the stored dataset");
  const wr = (await ai.getWorkRequest({ workRequestId: cm.opcWorkRequestId })).workRequest;
  check(wr.operationType === "CREATE_MODEL" && wr.resources.some((r) => r.identifier === cm.model.id), "the create work request names the model");
  const listed2 = await ai.listModels({ compartmentId: p.tenancy, displayName: "smoke-model" });
  check(listed2.modelCollection.items.length === 1, "listModels by displayName finds the model");

  // Errors arrive with OCI's codes.
  try {
    await ai.getModel({ modelId: "ocid1.generativeaimodel.oc1..doesnotexist" });
    check(false, "getModel of a missing model fails");
  } catch (e) {
    check(e.statusCode === 404 && e.serviceCode === "NotAuthorizedOrNotFound", `404 NotAuthorizedOrNotFound (got ${e.statusCode} ${e.serviceCode})`);
  }
  result.model = { id: gm.id, lifecycleState: gm.lifecycleState, workRequest: wr.id, trainingConfig: tc };
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : typeof e === "object" ? JSON.stringify(e) : String(e));
  if (e && e.serviceCode) console.error(`service error ${e.statusCode} ${e.serviceCode}: ${e.message}`);
  process.exit(1);
});
