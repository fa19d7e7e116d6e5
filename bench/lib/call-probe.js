// Preloaded into the service by `npm run bench:alloc` (node --import). Each SIGUSR2 moves it one step:
// 1. count the async resources calls create (promises, timers, ticks); 2. stop, and write the counts;
// 3. sample every allocation, kept or collected; 4. stop, and write the sampled profile and the
// collections seen. Results go to call-probe-<pid>.json in the OS temporary directory.
import { createHook } from "node:async_hooks";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constants, PerformanceObserver } from "node:perf_hooks";
import process from "node:process";

const out = join(tmpdir(), `call-probe-${process.pid}.json`);
const counts = {};
const hook = createHook({
  init(_id, type) {
    counts[type] = (counts[type] ?? 0) + 1;
  },
});
const gc = { minor: 0, major: 0 };
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
    else gc.major++;
  }
});
const session = new Session();
session.connect();
let step = 0;

process.on("SIGUSR2", () => {
  step++;
  if (step === 1) hook.enable();
  else if (step === 2) {
    hook.disable();
    writeFileSync(out, JSON.stringify({ counts }));
  } else if (step === 3) {
    observer.observe({ entryTypes: ["gc"] });
    session.post("HeapProfiler.startSampling", {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  } else if (step === 4) {
    observer.disconnect();
    session.post("HeapProfiler.stopSampling", (err, result) => {
      writeFileSync(out, JSON.stringify(err ? { error: String(err) } : { profile: result.profile, gc }));
    });
  }
});
