// Flink's side of scripts/bench-flink.sh, in one local MiniCluster per run.
//
//   make    --n N --out DIR        counts keys 0..N-1 once (keyBy(Long), uid "counter",
//                                  ValueState<Long> "count"), then takes a canonical
//                                  savepoint into DIR and cancels; prints its path
//   restore --n N --path DIR       restores DIR at --parallelism, sends every key once more
//                                  and checks count == 2; prints "restore_ms R total_ms T"
//                                  where R is submit -> every counter subtask opened (its
//                                  keyed state restored) and T submit -> all keys checked
//
// Common: --parallelism P (2) --max-parallelism M (128) --checkpoint-dir file:///...
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

public class FlinkRestoreBench {
    static final AtomicLong SEEN = new AtomicLong();
    static final AtomicLong BAD = new AtomicLong();
    static final AtomicLong OPENED = new AtomicLong();
    static final AtomicLong LAST_OPEN_NANOS = new AtomicLong();

    /** The counter job's function: counts, and in a restore checks each key's count. */
    public static class Count extends KeyedProcessFunction<Long, Long, String> {
        private final long expect;
        private transient ValueState<Long> count;

        Count(long expect) {
            this.expect = expect;
        }

        @Override
        public void open(OpenContext ctx) {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
            LAST_OPEN_NANOS.accumulateAndGet(System.nanoTime(), Math::max);
            OPENED.incrementAndGet();
        }

        @Override
        public void processElement(Long key, Context ctx, Collector<String> out) throws Exception {
            Long c = count.value();
            long n = (c == null) ? 1L : c + 1L;
            count.update(n);
            if (expect > 0 && n != expect) BAD.incrementAndGet();
            SEEN.incrementAndGet();
        }
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = LocalFlink.args(args);
        String mode = a.get("mode");
        long n = Long.parseLong(a.get("n"));
        int p = Integer.parseInt(a.getOrDefault("parallelism", "2"));
        StreamExecutionEnvironment env = LocalFlink.env(a);
        DataStream<Long> input = LocalFlink.input(env, a);
        input.keyBy(x -> x, Types.LONG)
                .process(new Count(mode.equals("restore") ? 2 : 0)).returns(Types.STRING)
                .uid("counter").name("counter")
                .sinkTo(new DiscardingSink<>()).uid("out").name("out");
        long submitted = System.nanoTime();
        JobClient job = env.executeAsync("flink-restore-bench-" + mode);
        if (mode.equals("make")) {
            LocalFlink.savepointWhenDone(job, SEEN, a);
            System.exit(0);
        }
        job.getJobExecutionResult().get();
        long total = System.nanoTime() - submitted;
        long restore = LAST_OPEN_NANOS.get() - submitted;
        System.out.println("restore_ms " + restore / 1_000_000 + " total_ms " + total / 1_000_000
                + " keys " + SEEN.get() + " bad " + BAD.get());
        System.exit(SEEN.get() == n && BAD.get() == 0 && OPENED.get() == p ? 0 : 1);
    }
}
