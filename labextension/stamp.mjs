// The built extension (fluxnb/labextension) carries a hash of what it was built from:
// labextension/src, widgets/src (the designer's modules it imports) and both lock files.
// `node stamp.mjs` writes it after a build; `node stamp.mjs --check` fails when the sources
// changed since (no Node packages needed, so CI checks it before anything else).
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, "..");
const stampFile = path.join(root, "fluxnb", "labextension", "sources.sha256");
const files = [
  ...["labextension/src", "widgets/src"].flatMap((dir) =>
    readdirSync(path.join(root, dir)).sort().map((f) => `${dir}/${f}`)),
  "labextension/package.json",
  "labextension/package-lock.json",
  "widgets/package-lock.json",
];
const hash = createHash("sha256");
for (const f of files) {
  hash.update(f + "\0");
  hash.update(readFileSync(path.join(root, f)));
}
const stamp = `${hash.digest("hex")}\n`;

if (process.argv.includes("--check")) {
  let built = "";
  try {
    built = readFileSync(stampFile, "utf8");
  } catch {}
  if (built !== stamp) {
    console.error("stale JupyterLab extension: fluxnb/labextension was built from other sources " +
      "than labextension/src + widgets/src; run: cd widgets && npm ci && cd ../labextension && npm ci && npm run build");
    process.exit(1);
  }
  console.log("JupyterLab extension is up to date");
} else {
  writeFileSync(stampFile, stamp);
  console.log(`stamped ${path.relative(root, stampFile)}`);
}
