// Richer-state sample job for testing readers of Flink's canonical savepoint format: the job
// that made fixtures/flink/rich-state-A (copied from shared/flink-samples/harness; package and
// class names must stay, the POJO state's serializer names flinksamples.RichStateJob$Stats).
// tests/flink/check.sh compiles it against Flink's jars and runs its probe mode.
//
// modes:
//   first   : NumberSequenceSource(0, N-1) (p=1, uid seq-source) UNION idle FileSource
//             (p=1, uid idle-source, map uid idle-map) -> assignTimestampsAndWatermarks
//             (monotonous, ts = i, p=1, uid wm) -> two keyed branches:
//               keyBy("user-" + i % K)  -> KeyedProcessFunction ProfileFn (uid "profile")
//               keyBy((int)(i % 500))   -> TumblingEventTimeWindows(10) count (uid "sessions")
//             the job never finishes (idle source), a savepoint is taken through REST.
//   probe   : restore from --restore-path; probe source sends 0..K-1 once; ProfileFn only
//             READS the state of key "user-<i>" and dumps it as JSON lines; the sessions
//             input is filtered to nothing, the end of input (MAX watermark) fires the
//             restored open windows, which are dumped as "key start end count".
//   inspect : print the savepoint _metadata (operators, key-group ranges, offsets, handles).
package flinksamples;

import java.io.BufferedWriter;
import java.io.DataInputStream;
import java.io.FileInputStream;
import java.io.FileWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.lib.NumberSequenceSource;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.checkpoint.Checkpoints;
import org.apache.flink.runtime.checkpoint.OperatorState;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;
import org.apache.flink.runtime.jobgraph.OperatorID;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.runtime.state.KeyGroupsStateHandle;
import org.apache.flink.runtime.state.KeyedStateHandle;
import org.apache.flink.runtime.state.OperatorStateHandle;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

public class RichStateJob {

    public static final String[] KINDS = {"view", "click", "share"};

    /** POJO value of ValueState "stats" (PojoSerializer; fields are serialized sorted by name: avg, last, total). */
    public static class Stats {
        public long total;
        public double avg;
        public String last;

        public Stats() {}
    }

    static BufferedWriter openDump(String dir, String name, int subtask) throws IOException {
        if (dir == null) return null;
        return new BufferedWriter(new FileWriter(dir + "/" + name + "-" + subtask + ".txt", StandardCharsets.UTF_8, true));
    }

    public static class ProfileFn extends KeyedProcessFunction<String, Long, String> {
        private final boolean probe;
        private final String dumpDir;
        private final int maxPar;
        private transient ValueState<Long> clicks;
        private transient MapState<String, Long> byKind;
        private transient ListState<Long> recent;
        private transient ValueState<Stats> stats;
        private transient Counter processed;
        private transient BufferedWriter dump;
        private transient int subtask;

        ProfileFn(boolean probe, String dumpDir, int maxPar) {
            this.probe = probe;
            this.dumpDir = dumpDir;
            this.maxPar = maxPar;
        }

        @Override
        public void open(OpenContext ctx) throws Exception {
            clicks = getRuntimeContext().getState(new ValueStateDescriptor<>("clicks", Types.LONG));
            byKind = getRuntimeContext().getMapState(new MapStateDescriptor<>("by_kind", Types.STRING, Types.LONG));
            recent = getRuntimeContext().getListState(new ListStateDescriptor<>("recent", Types.LONG));
            TypeInformation<Stats> sti = TypeInformation.of(Stats.class);
            stats = getRuntimeContext().getState(new ValueStateDescriptor<>("stats", sti));
            processed = getRuntimeContext().getMetricGroup().counter("processed");
            subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
            if (probe) dump = openDump(dumpDir, "profile", subtask);
            if (subtask == 0) System.err.println("stats type info: " + sti + " serializer: " + sti.getClass().getName());
        }

        @Override
        public void processElement(Long value, Context ctx, Collector<String> out) throws Exception {
            long i = value;
            String key = ctx.getCurrentKey();
            if (!probe) {
                String kind = KINDS[(int) (i % 3)];
                Long c = clicks.value();
                clicks.update(c == null ? 1L : c + 1L);
                Long k = byKind.get(kind);
                byKind.put(kind, k == null ? 1L : k + 1L);
                List<Long> r = new ArrayList<>();
                Iterable<Long> old = recent.get();
                if (old != null) for (Long x : old) r.add(x);
                r.add(i);
                while (r.size() > 3) r.remove(0);
                recent.update(r);
                Stats s = stats.value();
                if (s == null) s = new Stats();
                s.total += 1;
                s.avg = (s.avg * (s.total - 1) + i) / s.total;
                s.last = kind;
                stats.update(s);
            } else {
                StringBuilder sb = new StringBuilder();
                sb.append("{\"key\":\"").append(key).append('"');
                sb.append(",\"key_group\":").append(KeyGroupRangeAssignment.assignToKeyGroup(key, maxPar));
                sb.append(",\"subtask\":").append(subtask);
                sb.append(",\"clicks\":").append(clicks.value());
                TreeMap<String, Long> m = new TreeMap<>();
                for (Map.Entry<String, Long> e : byKind.entries()) m.put(e.getKey(), e.getValue());
                sb.append(",\"by_kind\":{");
                boolean first = true;
                for (Map.Entry<String, Long> e : m.entrySet()) {
                    if (!first) sb.append(',');
                    first = false;
                    sb.append('"').append(e.getKey()).append("\":").append(e.getValue());
                }
                sb.append("},\"recent\":[");
                first = true;
                Iterable<Long> rl = recent.get();
                if (rl != null) for (Long x : rl) { if (!first) sb.append(','); first = false; sb.append(x); }
                sb.append("],\"stats\":");
                Stats s = stats.value();
                if (s == null) sb.append("null");
                else sb.append("{\"total\":").append(s.total).append(",\"avg\":").append(s.avg)
                        .append(",\"last\":\"").append(s.last).append("\"}");
                sb.append("}\n");
                dump.write(sb.toString());
                dump.flush();
            }
            processed.inc();
        }

        @Override
        public void close() throws Exception {
            if (dump != null) dump.close();
        }
    }

    /** count of elements per window; accumulator (state "window-contents") is a Long. */
    public static class CountAgg implements AggregateFunction<Long, Long, Long> {
        public Long createAccumulator() { return 0L; }
        public Long add(Long v, Long acc) { return acc + 1L; }
        public Long getResult(Long acc) { return acc; }
        public Long merge(Long a, Long b) { return a + b; }
    }

    public static class EmitWindow extends ProcessWindowFunction<Long, String, Integer, TimeWindow> {
        private final String dumpDir;
        private transient BufferedWriter dump;
        EmitWindow(String dumpDir) { this.dumpDir = dumpDir; }

        @Override
        public void open(OpenContext ctx) throws Exception {
            dump = openDump(dumpDir, "sessions", getRuntimeContext().getTaskInfo().getIndexOfThisSubtask());
        }

        @Override
        public void process(Integer key, Context ctx, Iterable<Long> counts, Collector<String> out) throws Exception {
            long c = counts.iterator().next();
            String line = key + " " + ctx.window().getStart() + " " + ctx.window().getEnd() + " " + c;
            if (dump != null) { dump.write(line + "\n"); dump.flush(); }
            out.collect(line);
        }

        @Override
        public void close() throws Exception {
            if (dump != null) dump.close();
        }
    }

    static OperatorID uidToOperatorId(String uid) {
        // same as StreamGraphHasherV2 for operators with a user-specified uid
        byte[] h = org.apache.flink.shaded.guava33.com.google.common.hash.Hashing.murmur3_128(0)
                .newHasher().putString(uid, StandardCharsets.UTF_8).hash().asBytes();
        return new OperatorID(h);
    }

    static void inspect(String spDir, String outDir) throws Exception {
        StringBuilder js = new StringBuilder("{\"operators\":[");
        boolean firstOp = true;
        String[] uids = {"seq-source", "idle-source", "idle-map", "wm", "profile", "profile-out", "sessions", "sessions-out"};
        Map<OperatorID, String> names = new HashMap<>();
        for (String u : uids) names.put(uidToOperatorId(u), u);
        CheckpointMetadata md;
        try (DataInputStream in = new DataInputStream(new FileInputStream(spDir + "/_metadata"))) {
            md = Checkpoints.loadCheckpointMetadata(in, RichStateJob.class.getClassLoader(), spDir);
        }
        System.out.println("checkpointId " + md.getCheckpointId() + " operators " + md.getOperatorStates().size()
                + " masterStates " + md.getMasterStates().size());
        for (OperatorState os : md.getOperatorStates()) {
            System.out.println("operator uid=" + names.getOrDefault(os.getOperatorID(), "?") + " id=" + os.getOperatorID()
                    + " parallelism=" + os.getParallelism() + " maxParallelism=" + os.getMaxParallelism()
                    + " stateSize=" + os.getStateSize() + " coordinatorState=" + (os.getCoordinatorState() != null)
                    + " fullyFinished=" + os.isFullyFinished() + " class=" + os.getClass().getSimpleName());
            if (!firstOp) js.append(',');
            firstOp = false;
            js.append("{\"uid\":\"").append(names.getOrDefault(os.getOperatorID(), "?")).append("\",\"operator_id\":\"").append(os.getOperatorID())
              .append("\",\"parallelism\":").append(os.getParallelism()).append(",\"max_parallelism\":").append(os.getMaxParallelism()).append(",\"fully_finished\":").append(os.isFullyFinished())
              .append(",\"coordinator_state_bytes\":").append(os.getCoordinatorState() == null ? 0 : os.getCoordinatorState().getStateSize())
              .append(",\"subtask_states\":").append(os.getSubtaskStates().size()).append(",\"keyed\":[");
            boolean firstH = true;
            for (Map.Entry<Integer, OperatorSubtaskState> e : new TreeMap<>(os.getSubtaskStates()).entrySet()) {
                OperatorSubtaskState s = e.getValue();
                for (KeyedStateHandle k : s.getManagedKeyedState()) {
                    String d = k.getClass().getSimpleName() + " range=" + k.getKeyGroupRange();
                    if (k instanceof KeyGroupsStateHandle) {
                        KeyGroupsStateHandle g = (KeyGroupsStateHandle) k;
                        d += " delegate=" + g.getDelegateStateHandle().getClass().getSimpleName()
                                + " size=" + g.getStateSize() + " path=" + g.getDelegateStateHandle().maybeGetPath().map(Object::toString).orElse("(inline)");
                        StringBuilder offs = new StringBuilder();
                        int n = 0;
                        for (org.apache.flink.api.java.tuple.Tuple2<Integer, Long> t : g.getGroupRangeOffsets()) {
                            if (n++ < 6) offs.append(t.f0).append(':').append(t.f1).append(' ');
                        }
                        int nonEmpty = 0;
                        StringBuilder ne = new StringBuilder();
                        for (org.apache.flink.api.java.tuple.Tuple2<Integer, Long> t : g.getGroupRangeOffsets()) {
                            if (t.f1 != 0) { if (nonEmpty++ < 8) ne.append(t.f0).append(':').append(t.f1).append(' '); }
                        }
                        d += " offsets(first 6)=" + offs + " nonEmptyKeyGroups=" + nonEmpty + " firstNonEmpty=" + ne;
                    }
                    System.out.println("  subtask " + e.getKey() + " managedKeyed " + d);
                    if (k instanceof KeyGroupsStateHandle) {
                        if (!firstH) js.append(',');
                        firstH = false;
                        js.append(describeKeyedStream((KeyGroupsStateHandle) k, e.getKey(), names.getOrDefault(os.getOperatorID(), "?"), outDir, e.getKey() == 0));
                    }
                }
                for (KeyedStateHandle k : s.getRawKeyedState())
                    System.out.println("  subtask " + e.getKey() + " rawKeyed " + k);
                for (OperatorStateHandle o : s.getManagedOperatorState())
                    System.out.println("  subtask " + e.getKey() + " managedOperator " + o.getClass().getSimpleName()
                            + " states=" + o.getStateNameToPartitionOffsets().keySet() + " size=" + o.getStateSize()
                            + " delegate=" + o.getDelegateStateHandle().getClass().getSimpleName());
                for (OperatorStateHandle o : s.getRawOperatorState())
                    System.out.println("  subtask " + e.getKey() + " rawOperator " + o);
            }
            js.append("]}");
        }
        js.append("]}\n");
        if (outDir != null) java.nio.file.Files.writeString(java.nio.file.Paths.get(outDir, "layout.json"), js.toString());
    }

    static String describeKeyedStream(KeyGroupsStateHandle g, int subtask, String uid, String outDir, boolean print) throws Exception {
        StringBuilder js = new StringBuilder();
        String file;
        java.util.Optional<byte[]> inline = g.getDelegateStateHandle().asBytesIfInMemory();
        if (inline.isPresent()) {
            file = "inline-" + uid + "-" + subtask + ".bin";
            if (outDir != null) java.nio.file.Files.write(java.nio.file.Paths.get(outDir, file), inline.get());
            file = "(inline in _metadata; bytes copied to " + file + ")";
        } else {
            file = g.getDelegateStateHandle().maybeGetPath().map(x -> x.getName()).orElse("?");
        }
        js.append("{\"subtask\":").append(subtask).append(",\"key_group_range\":[").append(g.getKeyGroupRange().getStartKeyGroup())
          .append(',').append(g.getKeyGroupRange().getEndKeyGroup()).append("],\"handle\":\"").append(g.getDelegateStateHandle().getClass().getSimpleName())
          .append("\",\"file\":\"").append(file).append("\",\"bytes\":").append(g.getStateSize());
        StringBuilder offs = new StringBuilder();
        for (org.apache.flink.api.java.tuple.Tuple2<Integer, Long> t : g.getGroupRangeOffsets()) {
            if (offs.length() > 0) offs.append(',');
            offs.append('[').append(t.f0).append(',').append(t.f1).append(']');
        }
        js.append(",\"key_group_offsets\":[").append(offs).append(']');
        try (org.apache.flink.core.fs.FSDataInputStream in = g.openInputStream()) {
            org.apache.flink.core.memory.DataInputViewStreamWrapper view = new org.apache.flink.core.memory.DataInputViewStreamWrapper(in);
            org.apache.flink.runtime.state.KeyedBackendSerializationProxy<Object> proxy =
                    new org.apache.flink.runtime.state.KeyedBackendSerializationProxy<>(RichStateJob.class.getClassLoader());
            proxy.read(view);
            long headerEnd = in.getPos();
            js.append(",\"header_bytes\":").append(headerEnd).append(",\"key_group_compression\":").append(proxy.isUsingKeyGroupCompression())
              .append(",\"key_serializer_snapshot\":\"").append(proxy.getKeySerializerSnapshot().getClass().getName()).append("\",\"states\":[");
            if (print) System.out.println("    header: proxyVersion=" + proxy.getReadVersion() + " keyGroupCompression=" + proxy.isUsingKeyGroupCompression()
                    + " keySerializerSnapshot=" + proxy.getKeySerializerSnapshot().getClass().getName() + " headerBytes=" + headerEnd);
            int id = 0;
            for (org.apache.flink.runtime.state.metainfo.StateMetaInfoSnapshot sm : proxy.getStateMetaInfoSnapshots()) {
                StringBuilder ser = new StringBuilder();
                for (Map.Entry<String, org.apache.flink.api.common.typeutils.TypeSerializerSnapshot<?>> se : sm.getSerializerSnapshotsImmutable().entrySet())
                    ser.append(se.getKey()).append('=').append(se.getValue().getClass().getName()).append(' ');
                if (id > 0) js.append(',');
                js.append("{\"kv_state_id\":").append(id).append(",\"name\":\"").append(sm.getName()).append("\",\"type\":\"").append(sm.getBackendStateType())
                  .append("\",\"keyed_state_type\":\"").append(sm.getOptionsImmutable().getOrDefault("KEYED_STATE_TYPE", "")).append("\",\"serializers\":{");
                boolean f1 = true;
                for (Map.Entry<String, org.apache.flink.api.common.typeutils.TypeSerializerSnapshot<?>> se : sm.getSerializerSnapshotsImmutable().entrySet()) {
                    if (!f1) js.append(',');
                    f1 = false;
                    js.append('"').append(se.getKey()).append("\":\"").append(se.getValue().getClass().getName()).append('"');
                }
                js.append("}}");
                if (print) System.out.println("    kvStateId " + (id++) + ": name=\"" + sm.getName() + "\" type=" + sm.getBackendStateType()
                        + " options=" + sm.getOptionsImmutable() + " serializers: " + ser);
                else id++;
            }
            js.append("]}");
            long first = -1;
            for (org.apache.flink.api.java.tuple.Tuple2<Integer, Long> t : g.getGroupRangeOffsets()) if (t.f1 != 0) { first = t.f1; if (print) System.out.println("    hex of key group " + t.f0 + " from offset " + t.f1 + ":"); break; }
            if (first > 0 && print) {
                in.seek(first);
                byte[] b = new byte[160];
                int n = in.read(b);
                StringBuilder h = new StringBuilder("      ");
                for (int i = 0; i < n; i++) { h.append(String.format("%02x", b[i])); if (i % 32 == 31) h.append("\n      "); else if (i % 4 == 3) h.append(' '); }
                System.out.println(h);
            }
        }
        return js.toString();
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        String mode = a.get("mode");
        if ("inspect".equals(mode)) {
            inspect(a.get("savepoint"), a.get("out-dir"));
            System.exit(0);
        }
        if ("keygroups".equals(mode)) { // print key groups of "user-<i>" and Integer keys, to cross-check
            int maxPar = Integer.parseInt(a.get("max-parallelism"));
            long keys = Long.parseLong(a.get("keys"));
            for (long i = 0; i < keys; i++)
                System.out.println("user-" + i + " " + KeyGroupRangeAssignment.assignToKeyGroup("user-" + i, maxPar));
            for (int i = 0; i < 500; i++)
                System.out.println(i + " " + KeyGroupRangeAssignment.assignToKeyGroup(i, maxPar));
            System.out.println("uid profile " + uidToOperatorId("profile"));
            System.out.println("uid sessions " + uidToOperatorId("sessions"));
            System.exit(0);
        }
        final long n = Long.parseLong(a.get("n"));
        final long keys = Long.parseLong(a.get("keys"));
        int par = Integer.parseInt(a.getOrDefault("parallelism", "2"));
        int maxPar = Integer.parseInt(a.getOrDefault("max-parallelism", "128"));
        boolean probe = "probe".equals(mode);
        String dumpDir = a.get("dump-dir");

        Map<String, String> c = new HashMap<>();
        c.put("rest.port", a.getOrDefault("rest-port", "18091"));
        c.put("rest.address", "127.0.0.1");
        c.put("rest.bind-address", "127.0.0.1");
        c.put("state.backend.type", "hashmap");
        c.put("state.backend.incremental", "false");
        c.put("metrics.fetcher.update-interval", "100");
        c.put("taskmanager.memory.managed.size", "64m");
        c.put("execution.checkpointing.storage", "filesystem");
        c.put("execution.checkpointing.dir", a.get("checkpoint-dir"));
        if (a.containsKey("restore-path")) {
            c.put("execution.state-recovery.path", a.get("restore-path"));
            c.put("execution.state-recovery.ignore-unclaimed-state", "true");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(Configuration.fromMap(c));
        env.setParallelism(par);
        env.setMaxParallelism(maxPar);

        DataStream<Long> events;
        if (!probe) {
            DataStream<Long> seq = env.fromSource(new NumberSequenceSource(0, n - 1), WatermarkStrategy.noWatermarks(), "seq")
                    .uid("seq-source").setParallelism(1);
            DataStream<Long> idle = env.fromSource(
                            FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(a.get("idle-dir")))
                                    .monitorContinuously(Duration.ofHours(1)).build(),
                            WatermarkStrategy.noWatermarks(), "idle").uid("idle-source").setParallelism(1)
                    .map(Long::parseLong).returns(Types.LONG).uid("idle-map").setParallelism(1);
            events = seq.union(idle);
        } else {
            events = env.fromSource(new NumberSequenceSource(0, keys - 1), WatermarkStrategy.noWatermarks(), "probe")
                    .uid("probe-source").setParallelism(1);
        }
        // single-parallelism assigner: every keyed subtask sees the events in order 0..N-1
        DataStream<Long> stamped = events
                .assignTimestampsAndWatermarks(WatermarkStrategy.<Long>forMonotonousTimestamps().withTimestampAssigner((x, ts) -> x))
                .uid("wm").name("wm").setParallelism(1);

        stamped.keyBy(x -> "user-" + (x % keys), Types.STRING)
                .process(new ProfileFn(probe, dumpDir, maxPar)).returns(Types.STRING)
                .uid("profile").name("profile")
                .sinkTo(new DiscardingSink<>()).uid("profile-out").name("profile-out");

        DataStream<Long> sessIn = probe ? stamped.filter(x -> false).uid("probe-filter").setParallelism(1) : stamped;
        sessIn.keyBy(x -> (int) (x % 500), Types.INT)
                .window(TumblingEventTimeWindows.of(Duration.ofMillis(10)))
                .aggregate(new CountAgg(), new EmitWindow(probe ? dumpDir : null), Types.LONG, Types.LONG, Types.STRING)
                .uid("sessions").name("sessions")
                .sinkTo(new DiscardingSink<>()).uid("sessions-out").name("sessions-out");
        try {
            env.execute("rich-state-" + mode + "-p" + par + "-n" + n);
        } catch (Exception e) {
            String s = String.valueOf(e) + String.valueOf(e.getCause());
            if (s.toLowerCase().contains("cancel")) {
                System.err.println("job cancelled (expected)");
                System.exit(0);
            }
            throw e;
        }
        System.exit(0);
    }
}
