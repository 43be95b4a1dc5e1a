// Build the designer's ES module and style sheet into the Python package (fluxnb/_static),
// where anywidget loads them; `node build.mjs --check` fails if the committed files are stale.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, "..", "fluxnb", "_static");
const check = process.argv.includes("--check");

const results = await Promise.all([
  build({
    entryPoints: [path.join(here, "src", "designer.js")],
    bundle: true,
    format: "esm",
    minify: true,
    legalComments: "eof",
    target: ["es2020"],
    write: !check,
    outfile: path.join(out, "designer.js"),
  }),
  build({
    // what each designer's saved state carries: it loads designer.js from a shared model
    entryPoints: [path.join(here, "src", "loader.js")],
    bundle: true,
    format: "esm",
    minify: true,
    target: ["es2020"],
    write: !check,
    outfile: path.join(out, "loader.js"),
  }),
  build({
    entryPoints: [path.join(here, "src", "designer.css")],
    bundle: true,
    minify: true,
    write: !check,
    outfile: path.join(out, "designer.css"),
  }),
]);

if (check) {
  let stale = [];
  for (const r of results) {
    for (const f of r.outputFiles) {
      let committed = "";
      try {
        committed = readFileSync(f.path, "utf8");
      } catch {
        committed = null;
      }
      if (committed !== f.text) stale.push(path.relative(path.join(here, ".."), f.path));
    }
  }
  if (stale.length) {
    console.error(`stale designer bundle: ${stale.join(", ")} differ from widgets/src; run: cd widgets && npm ci && npm run build`);
    process.exit(1);
  }
  console.log("designer bundle is up to date");
} else {
  console.log(`built ${path.relative(path.join(here, ".."), out)}/designer.js, loader.js and designer.css`);
}
