// The worker pool (Runtime/ThreadPool.swift): coverage, static blocks, nesting, concurrent callers,
// resizing, deterministic reductions. Each test uses its own pool, so resizing it cannot disturb
// the kernels other suites run at the same time on ThreadPool.shared.

import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Runs `body(i)` on `n` new threads at once and waits for all of them.
private func onThreads(_ n: Int, _ body: @escaping (Int) -> Void) {
    var threads: [pthread_t] = []
    for i in 0..<n {
        let context = Unmanaged.passRetained(ThreadBody { body(i) }).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed")
        threads.append(thread)
    }
    for t in threads { pthread_join(t, nil) }
}

/// A pool of `threads` participants for one test, stopped (workers joined) afterwards.
private func withPool<R>(_ threads: Int, _ body: (ThreadPool) throws -> R) rethrows -> R {
    let pool = ThreadPool(threads: threads)
    defer { pool.setThreadCount(1) }
    return try body(pool)
}

@Suite(.timeLimit(.minutes(1))) struct ThreadPoolTests {
    @Test func blocksAreContiguousAndBalanced() {
        // 10 items over 3 participants: base 3, one extra to the first → [0,4) [4,7) [7,10)
        #expect((0..<3).map { p -> [Int] in let (lo, hi) = ThreadPool.block(p, of: 3, count: 10); return [lo, hi] } == [[0, 4], [4, 7], [7, 10]])
        // 2 items over 4 participants: the last two get empty blocks
        #expect((0..<4).map { ThreadPool.block($0, of: 4, count: 2).0 } == [0, 1, 2, 2])
        #expect((0..<4).map { ThreadPool.block($0, of: 4, count: 2).1 } == [1, 2, 2, 2])
    }

    @Test func everyIndexIsCoveredExactlyOnce() {
        withPool(3) { pool in
            #expect(pool.threadCount == 3)
            for count in [1, 2, 3, 4, 7, 100, 1001, 65_537] {
                let hits = UnsafeMutablePointer<Int32>.allocate(capacity: count)
                hits.initialize(repeating: 0, count: count)
                defer { hits.deallocate() }
                // each participant writes only its own block, so plain increments cannot race
                let seen = UnsafeMutablePointer<Int>.allocate(capacity: 3)
                seen.initialize(repeating: 0, count: 3)
                defer { seen.deallocate() }
                pool.run(count: count) { p, lo, hi in
                    let (bl, bh) = ThreadPool.block(p, of: min(3, count), count: count)
                    if bl != lo || bh != hi { hits[lo] += 100 }   // not the static block: flagged
                    seen[p] += 1
                    for i in lo..<hi { hits[i] += 1 }
                }
                #expect((0..<count).allSatisfy { hits[$0] == 1 }, "count \(count)")
                #expect((0..<min(3, count)).allSatisfy { seen[$0] == 1 }, "count \(count)")
            }
            var calls = 0
            pool.run(count: 0) { _, _, _ in calls += 1 }
            #expect(calls == 0)
        }
    }

    @Test func participantLimitsAndGrain() {
        withPool(2) { pool in
            var blocks: [(Int, Int, Int)] = []
            pool.run(count: 100, maxParticipants: 1) { p, lo, hi in blocks.append((p, lo, hi)) }
            #expect(blocks.count == 1 && blocks[0] == (0, 0, 100))
            // forRanges: fewer than `grain` items per extra participant stays on one thread
            var ranges: [(Int, Int)] = []
            let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
            pthread_mutex_init(lock, nil)
            defer { pthread_mutex_destroy(lock); lock.deallocate() }
            pool.forRanges(1000, grain: 600) { lo, hi in
                pthread_mutex_lock(lock); ranges.append((lo, hi)); pthread_mutex_unlock(lock)
            }
            #expect(ranges.count == 1 && ranges[0] == (0, 1000))
            ranges = []
            pool.forRanges(1000, grain: 400) { lo, hi in
                pthread_mutex_lock(lock); ranges.append((lo, hi)); pthread_mutex_unlock(lock)
            }
            #expect(ranges.sorted { $0.0 < $1.0 }.map { [$0.0, $0.1] } == [[0, 500], [500, 1000]])
        }
    }

    @Test func nestedCallsRunSeriallyOnTheCallingThread() {
        withPool(2) { pool in
            let outer = 4, inner = 50
            let hits = UnsafeMutablePointer<Int32>.allocate(capacity: outer * inner)
            hits.initialize(repeating: 0, count: outer * inner)
            let wrongThread = UnsafeMutablePointer<Int32>.allocate(capacity: outer)
            wrongThread.initialize(repeating: 0, count: outer)
            defer { hits.deallocate(); wrongThread.deallocate() }
            pool.run(count: outer) { _, lo, hi in
                for o in lo..<hi {
                    let me = pthread_self()
                    pool.run(count: inner) { _, ilo, ihi in
                        if pthread_self() != me { wrongThread[o] += 1 }
                        for i in ilo..<ihi { hits[o * inner + i] += 1 }
                    }
                    // a nested call into the shared pool from a worker is serial too
                    ThreadPool.shared.run(count: 8) { _, _, _ in if pthread_self() != me { wrongThread[o] += 1 } }
                }
            }
            #expect((0..<(outer * inner)).allSatisfy { hits[$0] == 1 })
            #expect((0..<outer).allSatisfy { wrongThread[$0] == 0 })
        }
    }

    @Test func concurrentCallersAllComplete() {
        withPool(2) { pool in
            let callers = 4, rounds = 200, count = 1000
            let results = UnsafeMutablePointer<Int>.allocate(capacity: callers * rounds)
            results.initialize(repeating: -1, count: callers * rounds)
            defer { results.deallocate() }
            onThreads(callers) { c in
                for r in 0..<rounds {
                    // per-call partial sums of the indices, combined in participant order
                    var partial = [Int](repeating: 0, count: 2)
                    partial.withUnsafeMutableBufferPointer { buffer in
                        pool.run(count: count) { p, lo, hi in
                            var s = 0
                            for i in lo..<hi { s += i }
                            buffer[p] = s
                        }
                    }
                    results[c * rounds + r] = partial.reduce(0, +)
                }
            }
            // Σ 0..999 = 999·1000/2 = 499 500, for every call of every thread
            #expect((0..<(callers * rounds)).allSatisfy { results[$0] == 499_500 })
        }
    }

    @Test func setThreadCountChangesTheParticipants() {
        withPool(1) { pool in
            func participants(_ count: Int = 30) -> (Set<Int>, Int) {
                let ids = UnsafeMutablePointer<pthread_t>.allocate(capacity: 8)
                let used = UnsafeMutablePointer<Bool>.allocate(capacity: 8)
                used.initialize(repeating: false, count: 8)
                defer { ids.deallocate(); used.deallocate() }
                pool.run(count: count) { p, _, _ in ids[p] = pthread_self(); used[p] = true }
                let ps = Set((0..<8).filter { used[$0] })
                let threads = Set(ps.map { UInt(ids[$0]) })
                return (ps, threads.count)
            }
            #expect(pool.threadCount == 1)
            #expect(participants() == ([0], 1))
            pool.setThreadCount(3)
            #expect(pool.threadCount == 3)
            // three participants on three different threads (the caller and two workers)
            #expect(participants() == ([0, 1, 2], 3))
            #expect(participants(2) == ([0, 1], 2))   // never more participants than items
            pool.setThreadCount(2)
            #expect(pool.threadCount == 2)
            #expect(participants() == ([0, 1], 2))
            pool.setThreadCount(0)   // at least one
            #expect(pool.threadCount == 1)
            #expect(participants() == ([0], 1))
            pool.setThreadCount(-7)
            #expect(pool.threadCount == 1)
            pool.setThreadCount(4)
            #expect(participants() == ([0, 1, 2, 3], 4))
        }
    }

    @Test func reductionsAreBitIdenticalAcrossRuns() throws {
        try withPool(2) { pool in
            let n = 1_000_003
            let x = try randomTensor([n], seed: 21, requiresGrad: false)
            let p = x.data
            func parallelSum() -> Float {
                var partial = [Float](repeating: 0, count: pool.threadCount)
                partial.withUnsafeMutableBufferPointer { buffer in
                    pool.run(count: n) { part, lo, hi in buffer[part] = Reduce.sum(p + lo, hi - lo) }
                }
                return partial.reduce(0, +)
            }
            let first = parallelSum()
            for _ in 0..<20 { #expect(parallelSum().bitPattern == first.bitPattern) }
            // the same blocks summed serially give the same bits: the split, not the timing, decides
            let serial = (0..<2).map { part -> Float in
                let (lo, hi) = ThreadPool.block(part, of: 2, count: n)
                return Reduce.sum(p + lo, hi - lo)
            }.reduce(0, +)
            #expect(serial.bitPattern == first.bitPattern)
            // and it is the sum (float rounding aside): compare with a double-precision sum
            var exact = 0.0
            for i in 0..<n { exact += Double(p[i]) }
            #expect(abs(Double(first) - exact) < 1e-3 * max(1, abs(exact)))
        }
    }
}
