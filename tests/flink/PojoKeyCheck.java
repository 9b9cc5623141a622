// A job keyed by a POJO, whose hashCode is the job's own code: Flink's key groups for such
// keys cannot be computed without the JVM, so `rewind import-flink` keeps each key's group
// and `rewind export-flink` puts the key back in it.
//
//   make    --n N --out DIR        counts each key Region(i % 7, "r" + i) once (uid "by-region",
//                                  ValueState<Long> "count"), takes a canonical savepoint into
//                                  DIR and cancels; prints its path
//   restore --n N --path DIR       restores DIR, sends every key once more and checks
//                                  count == 2 from inside Flink; prints one summary line
//
// Common: --parallelism P (2) --max-parallelism M (128) --checkpoint-dir file:///...
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

public class PojoKeyCheck {
    static final AtomicLong SEEN = new AtomicLong();
    static final AtomicLong BAD = new AtomicLong();

    /** The key: a POJO with its own hashCode. */
    public static class Region {
        public int zone;
        public String name;

        public Region() {}

        Region(int zone, String name) {
            this.zone = zone;
            this.name = name;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Region && ((Region) o).zone == zone && ((Region) o).name.equals(name);
        }

        @Override
        public int hashCode() {
            return name.hashCode() * 7919 + zone;
        }
    }

    public static class Count extends KeyedProcessFunction<Region, Long, String> {
        private final long expect;
        private transient ValueState<Long> count;

        Count(long expect) {
            this.expect = expect;
        }

        @Override
        public void open(OpenContext ctx) {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
        }

        @Override
        public void processElement(Long i, Context ctx, Collector<String> out) throws Exception {
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
        TypeInformation<Region> keyType = TypeInformation.of(Region.class);
        input.keyBy(i -> new Region((int) (i % 7), "r" + i), keyType)
                .process(new Count(mode.equals("restore") ? 2 : 0)).returns(Types.STRING)
                .uid("by-region").name("by-region")
                .sinkTo(new DiscardingSink<>()).uid("out").name("out");
        JobClient job = env.executeAsync("pojo-key-" + mode);
        if (mode.equals("make")) {
            LocalFlink.savepointWhenDone(job, SEEN, a);
            System.exit(0);
        }
        job.getJobExecutionResult().get();
        System.out.println("restored by-region: " + (SEEN.get() - BAD.get()) + " of " + n
                + " POJO keys hold 1, " + BAD.get() + " differ");
        System.exit(SEEN.get() == n && BAD.get() == 0 ? 0 : 1);
    }
}
