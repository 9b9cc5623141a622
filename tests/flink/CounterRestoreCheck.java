// Restores a savepoint of the counter job (uid "counter": keyBy(Long), ValueState<Long>
// "count") in a local Flink MiniCluster and checks every key from inside Flink: a bounded
// probe source sends each key 0..n-1 once, the job's own function increments the restored
// count and compares it with --expect (the restored count + 1), or with the count a line
// "KEY COUNT" of --expect-file gives that key. Prints one summary line and exits 0 when
// every key matched, 1 otherwise.
//
//   java -cp "<flink lib>/*:<classes>" CounterRestoreCheck --restore-path file:///ABS/SAVEPOINT
//        --n 100000 --expect 11 --parallelism 3 --max-parallelism 128
//        --checkpoint-dir file:///tmp/x --mismatch-file /tmp/mismatches.txt
//        [--uid counter] [--strict true] [--expect-file FILE]
//
// --strict true restores without ignoring unclaimed state: every operator of the savepoint
// must be in this job (uids probe-source, the counter's uid, out).
import java.util.HashMap;
import java.util.Map;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.lib.NumberSequenceSource;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

public class CounterRestoreCheck {

    /** Counts like the counter job and checks each restored count from inside Flink. */
    public static class Check extends KeyedProcessFunction<Long, Long, String> {
        private final long expected;
        private final Map<Long, Long> overrides;
        private final String mismatchFile;
        private transient ValueState<Long> count;
        private final LongCounter ok = new LongCounter();
        private final LongCounter bad = new LongCounter();

        Check(long expected, Map<Long, Long> overrides, String mismatchFile) {
            this.expected = expected;
            this.overrides = overrides;
            this.mismatchFile = mismatchFile;
        }

        @Override
        public void open(OpenContext ctx) {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
            getRuntimeContext().addAccumulator("verified_ok", ok);
            getRuntimeContext().addAccumulator("mismatch", bad);
        }

        @Override
        public void processElement(Long key, Context ctx, Collector<String> out) throws Exception {
            Long c = count.value();
            long n = (c == null) ? 1L : c + 1L;
            count.update(n);
            long want = overrides.getOrDefault(key, expected);
            if (n == want) {
                ok.add(1L);
            } else {
                bad.add(1L);
                if (mismatchFile != null) {
                    synchronized (CounterRestoreCheck.class) {
                        try (java.io.FileWriter w = new java.io.FileWriter(mismatchFile, true)) {
                            w.write("key " + ctx.getCurrentKey() + ": count " + n + ", expected " + want + "\n");
                        }
                    }
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        final long n = Long.parseLong(a.get("n"));
        long expected = Long.parseLong(a.get("expect"));
        Map<Long, Long> overrides = new HashMap<>();
        if (a.containsKey("expect-file")) {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Paths.get(a.get("expect-file")))) {
                String[] kv = line.trim().split("\\s+");
                if (kv.length == 2) overrides.put(Long.parseLong(kv[0]), Long.parseLong(kv[1]));
            }
        }
        String uid = a.getOrDefault("uid", "counter");
        boolean strict = Boolean.parseBoolean(a.getOrDefault("strict", "false"));

        Map<String, String> c = new HashMap<>();
        c.put("rest.port", a.getOrDefault("rest-port", "0"));
        c.put("rest.address", "127.0.0.1");
        c.put("rest.bind-address", "127.0.0.1");
        c.put("state.backend.type", "hashmap");
        c.put("execution.checkpointing.storage", "filesystem");
        c.put("execution.checkpointing.dir", a.get("checkpoint-dir"));
        c.put("execution.state-recovery.path", a.get("restore-path"));
        // The sample's sources are not part of this job: their state stays unclaimed,
        // unless --strict (then the savepoint must hold only this job's operators).
        c.put("execution.state-recovery.ignore-unclaimed-state", strict ? "false" : "true");
        StreamExecutionEnvironment env =
                StreamExecutionEnvironment.getExecutionEnvironment(Configuration.fromMap(c));
        env.setParallelism(Integer.parseInt(a.getOrDefault("parallelism", "2")));
        env.setMaxParallelism(Integer.parseInt(a.getOrDefault("max-parallelism", "128")));

        env.fromSource(new NumberSequenceSource(0, n - 1), WatermarkStrategy.noWatermarks(), "probe")
                .uid("probe-source")
                .keyBy(x -> x, Types.LONG)
                .process(new Check(expected, overrides, a.get("mismatch-file"))).returns(Types.STRING)
                .uid(uid).name("counter")
                .sinkTo(new DiscardingSink<>()).uid("out").name("out");
        JobExecutionResult result = env.execute("counter-restore-check");
        long ok = result.<Long>getAccumulatorResult("verified_ok");
        long bad = result.<Long>getAccumulatorResult("mismatch");
        String held = overrides.isEmpty() ? "hold " + (expected - 1) : "hold what " + a.get("expect-file") + " says";
        System.out.println("restored counter: " + ok + " of " + n + " keys " + held + ", " + bad + " differ");
        System.exit(ok == n && bad == 0 ? 0 : 1);
    }
}
