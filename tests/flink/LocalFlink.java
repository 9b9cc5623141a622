// What the Java jobs in tests/flink share: their arguments, a local MiniCluster's
// environment (hashmap state, loopback REST, optional restore), the numbered input (with an
// idle source that keeps a `make` run alive until its savepoint), and the `make` step that
// takes a canonical savepoint once every input was processed.
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.lib.NumberSequenceSource;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.source.legacy.SourceFunction;

public final class LocalFlink {
    private LocalFlink() {}

    /** `MODE --name value ...` as a map (the mode under "mode"). */
    public static Map<String, String> args(String[] args) {
        Map<String, String> a = new HashMap<>();
        a.put("mode", args.length > 0 ? args[0] : "");
        for (int i = 1; i + 1 < args.length; i += 2) a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        return a;
    }

    /** A MiniCluster environment; `restore` mode restores `--path`, leaving the first run's
     *  sources unclaimed. */
    public static StreamExecutionEnvironment env(Map<String, String> a) {
        Map<String, String> c = new HashMap<>();
        c.put("rest.port", "0");
        c.put("rest.address", "127.0.0.1");
        c.put("rest.bind-address", "127.0.0.1");
        c.put("state.backend.type", "hashmap");
        c.put("execution.checkpointing.storage", "filesystem");
        c.put("execution.checkpointing.dir", a.get("checkpoint-dir"));
        c.put("taskmanager.memory.managed.size", "64m");
        if (a.get("mode").equals("restore")) {
            c.put("execution.state-recovery.path", a.get("path"));
            c.put("execution.state-recovery.ignore-unclaimed-state", "true");
        }
        StreamExecutionEnvironment env =
                StreamExecutionEnvironment.getExecutionEnvironment(Configuration.fromMap(c));
        env.setParallelism(Integer.parseInt(a.getOrDefault("parallelism", "2")));
        env.setMaxParallelism(Integer.parseInt(a.getOrDefault("max-parallelism", "128")));
        return env;
    }

    /** The numbers 0..n-1 once; a `make` run also never ends, so it can be savepointed. */
    public static DataStream<Long> input(StreamExecutionEnvironment env, Map<String, String> a) {
        long n = Long.parseLong(a.get("n"));
        boolean make = a.get("mode").equals("make");
        DataStream<Long> input = env.fromSource(
                new NumberSequenceSource(0, n - 1), WatermarkStrategy.noWatermarks(), "keys")
                .uid(make ? "keys" : "probe");
        return make ? input.union(env.addSource(new Idle()).returns(Types.LONG).uid("idle")) : input;
    }

    /** Waits until `seen` reaches --n, takes a canonical savepoint into --out, cancels and
     *  prints the savepoint's path. */
    public static void savepointWhenDone(JobClient job, AtomicLong seen, Map<String, String> a)
            throws Exception {
        long n = Long.parseLong(a.get("n"));
        while (seen.get() < n) Thread.sleep(20);
        String path = job.triggerSavepoint(a.get("out"), SavepointFormatType.CANONICAL).get();
        job.cancel().get();
        System.out.println("savepoint " + path);
    }

    /** Never emits, never ends: keeps the job running after the bounded input. */
    public static class Idle implements SourceFunction<Long> {
        private volatile boolean running = true;

        @Override
        public void run(SourceContext<Long> ctx) throws Exception {
            while (running) Thread.sleep(50);
        }

        @Override
        public void cancel() {
            running = false;
        }
    }
}
