// A fixed pool of worker threads for data-parallel kernels.
//
// Why not Dispatch or Swift concurrency: both would pull libdispatch back into a library that links
// the Swift runtime statically (see ../shared/notes/native-python.md), and neither gives a static,
// deterministic split of work. Here a job is a range [0, count) cut into one contiguous block per
// participant, so the same job always runs the same arithmetic in the same order: results are
// bit-identical run to run on the same machine and thread count.
//
// OpenBLAS is set to one thread: the engine parallelises GEMMs itself (over images, or over
// column blocks), so the two pools never oversubscribe the cores.

import Glibc
import COpenBLAS
import Synchronization

public final class ThreadPool {
    /// The engine-wide pool. Its size is `MEDSYNTH_NUM_THREADS`, else `OMP_NUM_THREADS`, else the
    /// number of online cores.
    public static let shared = ThreadPool(threads: ThreadPool.defaultThreadCount())

    /// Participants in a job, the calling thread included.
    public private(set) var threadCount: Int

    private var workers: [pthread_t] = []
    private var mutex = pthread_mutex_t()
    private var workAvailable = pthread_cond_t()
    private var workDone = pthread_cond_t()
    /// Held by the thread that runs a job; a second caller that cannot take it runs serially.
    private var busy = pthread_mutex_t()
    private var generation = 0
    private var pendingWorkers = 0
    private var shuttingDown = false
    private var job: ((Int, Int, Int) -> Void)?   // (participant, lo, hi)
    private var jobCount = 0
    private var jobParticipants = 0
    /// Mirrors of `generation` and `pendingWorkers` that threads poll for a few microseconds
    /// before sleeping on the condition variables: back-to-back kernels then hand work over
    /// without a futex wake-up and a context switch each (a fifth of the time of a small model's
    /// training step went there).
    private let postedGeneration = Atomic<Int>(0)
    private let pendingAtomic = Atomic<Int>(0)
    package static let spinLimit = 1 << 14

    package init(threads: Int) {
        pthread_mutex_init(&mutex, nil)
        pthread_mutex_init(&busy, nil)
        pthread_cond_init(&workAvailable, nil)
        pthread_cond_init(&workDone, nil)
        threadCount = 1
        openblas_set_num_threads(1)
        startWorkers(max(1, threads) - 1)
    }

    package static func defaultThreadCount() -> Int {
        for name in ["MEDSYNTH_NUM_THREADS", "OMP_NUM_THREADS"] {
            if let raw = getenv(name), let n = Int(String(cString: raw)), n > 0 { return min(n, 256) }
        }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Changes the number of participants (at least 1). Waits for a running job to finish.
    public func setThreadCount(_ n: Int) {
        let wanted = max(1, min(n, 256))
        pthread_mutex_lock(&busy)
        defer { pthread_mutex_unlock(&busy) }
        if wanted == threadCount { return }
        stopWorkers()
        startWorkers(wanted - 1)
    }

    private func startWorkers(_ n: Int) {
        shuttingDown = false
        for index in 0..<n {
            let context = UnsafeMutablePointer<WorkerContext>.allocate(capacity: 1)
            // The worker must count jobs from the generation current now: a job posted before the
            // thread first takes the lock would otherwise be missed (and its caller wait forever).
            context.initialize(to: WorkerContext(pool: Unmanaged.passUnretained(self), participant: index + 1,
                                                 startGeneration: generation))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                guard let raw else { return nil }
                let context = raw.assumingMemoryBound(to: WorkerContext.self)
                let worker = context.pointee
                context.deinitialize(count: 1)
                context.deallocate()
                worker.pool.takeUnretainedValue().workerLoop(participant: worker.participant, seen: worker.startGeneration)
                return nil
            }, context)
            if rc != 0 {
                context.deinitialize(count: 1)
                context.deallocate()
                break   // fewer threads is slower, not wrong
            }
            workers.append(thread)
        }
        threadCount = workers.count + 1
    }

    private func stopWorkers() {
        pthread_mutex_lock(&mutex)
        shuttingDown = true
        pthread_cond_broadcast(&workAvailable)
        pthread_mutex_unlock(&mutex)
        for thread in workers { pthread_join(thread, nil) }
        workers = []
        threadCount = 1
    }

    private func workerLoop(participant: Int, seen start: Int) {
        ThreadPool.markWorkerThread()
        var seen = start
        while true {
            var spins = 0
            while spins < ThreadPool.spinLimit && postedGeneration.load(ordering: .acquiring) == seen { spins += 1 }
            pthread_mutex_lock(&mutex)
            while generation == seen && !shuttingDown { pthread_cond_wait(&workAvailable, &mutex) }
            if shuttingDown { break }
            seen = generation
            var body = job
            let count = jobCount, participants = jobParticipants
            pthread_mutex_unlock(&mutex)
            if participant < participants, let work = body {
                let (lo, hi) = ThreadPool.block(participant, of: participants, count: count)
                if lo < hi { work(participant, lo, hi) }
            }
            // drop the job before reporting done: the caller's withoutActuallyEscaping checks
            // that no reference to its closure outlives the call
            body = nil
            pthread_mutex_lock(&mutex)
            pendingWorkers -= 1
            pendingAtomic.store(pendingWorkers, ordering: .releasing)
            if pendingWorkers == 0 { pthread_cond_signal(&workDone) }
            pthread_mutex_unlock(&mutex)
        }
        pthread_mutex_unlock(&mutex)
    }

    /// The contiguous block of [0, count) that `participant` of `participants` runs.
    @inline(__always)
    package static func block(_ participant: Int, of participants: Int, count: Int) -> (Int, Int) {
        let base = count / participants, extra = count % participants
        let lo = participant * base + min(participant, extra)
        return (lo, lo + base + (participant < extra ? 1 : 0))
    }

    /// Runs `body(participant, lo, hi)` over contiguous blocks covering [0, count), one block per
    /// participant, at most `maxParticipants`. Nested calls, calls from a worker, and calls made
    /// while another thread's job runs, run serially on the calling thread (still as blocks, so the
    /// arithmetic does not change with the caller).
    public func run(count: Int, maxParticipants: Int = Int.max, _ body: (Int, Int, Int) -> Void) {
        guard count > 0 else { return }
        let participants = min(threadCount, count, max(1, maxParticipants))
        if participants == 1 || ThreadPool.isWorkerThread || pthread_mutex_trylock(&busy) != 0 {
            for p in 0..<participants {
                let (lo, hi) = ThreadPool.block(p, of: participants, count: count)
                if lo < hi { body(p, lo, hi) }
            }
            return
        }
        defer { pthread_mutex_unlock(&busy) }
        withoutActuallyEscaping(body) { escapable in
            pthread_mutex_lock(&mutex)
            job = escapable
            jobCount = count
            jobParticipants = participants
            pendingWorkers = workers.count
            pendingAtomic.store(pendingWorkers, ordering: .releasing)
            generation &+= 1
            postedGeneration.store(generation, ordering: .releasing)
            pthread_cond_broadcast(&workAvailable)
            pthread_mutex_unlock(&mutex)

            ThreadPool.markWorkerThread()          // nested calls from inside `body` run serially
            let (lo, hi) = ThreadPool.block(0, of: participants, count: count)
            if lo < hi { escapable(0, lo, hi) }
            ThreadPool.unmarkWorkerThread()

            var spins = 0
            while spins < ThreadPool.spinLimit && pendingAtomic.load(ordering: .acquiring) > 0 { spins += 1 }
            pthread_mutex_lock(&mutex)
            while pendingWorkers > 0 { pthread_cond_wait(&workDone, &mutex) }
            job = nil
            pthread_mutex_unlock(&mutex)
        }
    }

    /// `parallelFor` over ranges: splits [0, count) into contiguous chunks, serially when the
    /// job is smaller than `grain` items per extra thread (waking threads costs ~10 µs).
    public func forRanges(_ count: Int, grain: Int = 1, _ body: (Int, Int) -> Void) {
        let participants = grain <= 1 ? Int.max : max(1, count / grain)
        run(count: count, maxParticipants: participants) { _, lo, hi in body(lo, hi) }
    }

    // MARK: - which thread are we on

    private static let workerKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
    private static func markWorkerThread() { pthread_setspecific(workerKey, UnsafeRawPointer(bitPattern: 1)) }
    private static func unmarkWorkerThread() { pthread_setspecific(workerKey, nil) }
    package static var isWorkerThread: Bool { pthread_getspecific(workerKey) != nil }
}

private struct WorkerContext {
    package let pool: Unmanaged<ThreadPool>
    package let participant: Int
    package let startGeneration: Int
}

/// Shorthand for `ThreadPool.shared.forRanges`.
@inline(__always)
public func parallelRanges(_ count: Int, grain: Int = 1, _ body: (Int, Int) -> Void) {
    ThreadPool.shared.forRanges(count, grain: grain, body)
}
