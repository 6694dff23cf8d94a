// Preloaded into `wg-netstack connect` by bench/client-role.mjs (node --import): notes the
// memory of every WebAssembly instance the process creates, and on SIGUSR2 writes one line
// {"wasmMemoryBytes": N} to stderr. WebAssembly memory never shrinks, so N is also its peak.

const memories = [];
const Instance = WebAssembly.Instance;
WebAssembly.Instance = class extends Instance {
  constructor(module, imports) {
    super(module, imports);
    if (this.exports.memory instanceof WebAssembly.Memory) memories.push(this.exports.memory);
  }
};
process.on("SIGUSR2", () => {
  const wasmMemoryBytes = memories.reduce((sum, memory) => sum + memory.buffer.byteLength, 0);
  process.stderr.write(`${JSON.stringify({ wasmMemoryBytes })}\n`);
});
