#!/usr/bin/env node
// Starts the memorygraph binary of this platform, installed by npm as one of the optional
// dependencies `memorygraph-rs-<platform>-<arch>`, with this process's stdin, stdout and
// stderr, so an MCP client talks to the server itself.
"use strict";

const { spawn } = require("node:child_process");

function binaryPath() {
  const fromEnv = process.env.MEMORYGRAPH_BINARY;
  if (fromEnv) return fromEnv;
  const platform = `${process.platform}-${process.arch}`;
  const pkg = `memorygraph-rs-${platform}`;
  const exe = process.platform === "win32" ? "memorygraph.exe" : "memorygraph";
  try {
    return require.resolve(`${pkg}/bin/${exe}`);
  } catch {
    process.stderr.write(
      `memorygraph: no binary for ${platform}: the package ${pkg} is not installed.\n` +
        "Prebuilt binaries exist for darwin-arm64, darwin-x64, linux-arm64, linux-x64 (glibc) " +
        "and win32-x64. If yours is one of them, reinstall without --no-optional / --omit=optional; " +
        "otherwise build it with `cargo install --locked --git <repository>` and set " +
        "MEMORYGRAPH_BINARY to its path.\n"
    );
    process.exit(1);
  }
}

const child = spawn(binaryPath(), process.argv.slice(2), {
  stdio: "inherit",
  windowsHide: true,
});

// A client that stops the launcher stops the server.
const forwarded = ["SIGINT", "SIGTERM", "SIGHUP"];
for (const signal of forwarded) {
  process.on(signal, () => child.kill(signal));
}

child.on("error", (err) => {
  process.stderr.write(`memorygraph: cannot start the binary: ${err.message}\n`);
  process.exit(1);
});

child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal, so the caller sees what happened.
    for (const s of forwarded) process.removeAllListeners(s);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code === null ? 1 : code);
});
