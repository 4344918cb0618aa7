#!/usr/bin/env node
// Writes the npm package that carries the memorygraph binary of one platform:
//   node packaging/npm/make-platform-package.mjs <platform> <binary> <out-dir>
// <platform> is npm's `<os>-<cpu>` (linux-x64, darwin-arm64, win32-x64, ...). The version is
// the launcher's, so the launcher's optionalDependencies always match.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [platform, binary, out] = process.argv.slice(2);
if (!platform || !binary || !out) {
  console.error("usage: make-platform-package.mjs <platform> <binary> <out-dir>");
  process.exit(2);
}
const [os, cpu] = platform.split("-");
const here = dirname(fileURLToPath(import.meta.url));
const launcher = JSON.parse(readFileSync(join(here, "memorygraph-rs", "package.json"), "utf8"));
const name = `${launcher.name}-${platform}`;
if (!(name in launcher.optionalDependencies)) {
  console.error(`${name} is not among the launcher's optionalDependencies`);
  process.exit(2);
}
const exe = os === "win32" ? "memorygraph.exe" : "memorygraph";

mkdirSync(join(out, "bin"), { recursive: true });
copyFileSync(binary, join(out, "bin", exe));
chmodSync(join(out, "bin", exe), 0o755);
const pkg = {
  name,
  version: launcher.version,
  description: `The memorygraph binary for ${platform}; installed by ${launcher.name}`,
  license: launcher.license,
  os: [os],
  cpu: [cpu],
  files: [`bin/${exe}`, "README.md"],
  preferUnplugged: true,
};
if (os === "linux") pkg.libc = ["glibc"];
writeFileSync(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
writeFileSync(
  join(out, "README.md"),
  `# ${name}\n\nThe \`memorygraph\` binary for ${platform}. Install \`${launcher.name}\` instead: ` +
    "it picks the package for your platform.\n"
);
console.log(join(out));
