// Validate an AsyncAPI document with the AsyncAPI project's own parser (@asyncapi/parser,
// installed by `bangkom setup` into the cache). Usage: node validate_asyncapi.cjs <parser dir> <file>
// Prints the diagnostics as JSON; exits 1 when any is an error.
const path = require("path");
const fs = require("fs");
const { Parser } = require(path.join(process.argv[2], "node_modules", "@asyncapi", "parser"));

(async () => {
  const text = fs.readFileSync(process.argv[3], "utf8");
  const { document, diagnostics } = await new Parser().parse(text);
  const out = diagnostics.map((d) => ({ severity: d.severity, code: d.code, message: d.message,
                                         path: d.path.join("/") }));
  console.log(JSON.stringify({ parsed: Boolean(document), messages: document ? document.allMessages().length : 0,
                               channels: document ? document.allChannels().length : 0, diagnostics: out }));
  process.exit(document && !out.some((d) => d.severity === 0) ? 0 : 1);
})().catch((e) => { console.error(e); process.exit(2); });
