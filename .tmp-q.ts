import { spreadOffsetMs, sha256 } from "./src/core/schedule.ts";
const names = Array.from({ length: 30000 }, (_, i) => `cluster-${String(i).padStart(5, "0")}`);
for (let r = 0; r < 8; r++) {
  let t = performance.now(); let x = 0;
  for (const n of names) x += spreadOffsetMs(n, "policy-1", 7200000);
  const a = performance.now() - t;
  const d = new Uint8Array(30);
  t = performance.now();
  for (let i = 0; i < 30000; i++) { d[0] = i; x += sha256(d)[0]!; }
  console.log(`spreadOffset ${a.toFixed(1)} ms, sha256(30B) ${(performance.now() - t).toFixed(1)} ms`, x > 0);
}
