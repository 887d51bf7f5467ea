import Testing
@testable import MedSynthCore

/// The engine's cache of freed large buffers: best fit within twice the request, exact sizes
/// first, small buffers never cached.
@Suite struct BufferCacheTests {
    @Test func takesTheSmallestIdleBufferWithinTwiceTheRequest() throws {
        let cache = BufferCache()
        let mib = 1 << 20
        let (big, bigSize) = try cache.take(bytes: mib)
        let (small, smallSize) = try cache.take(bytes: mib / 2)
        #expect(bigSize == mib && smallSize == mib / 2)
        cache.give(big, bytes: bigSize)
        cache.give(small, bytes: smallSize)
        #expect(cache.idleBytes == mib + mib / 2)
        // 600 KiB: the 512 KiB buffer is too small, the 1 MiB one fits within twice the request
        let (a, aSize) = try cache.take(bytes: 600 << 10)
        #expect(a == big && aSize == mib)
        // 300 KiB: the 512 KiB buffer (the 1 MiB one is taken)
        let (b, bSize) = try cache.take(bytes: 300 << 10)
        #expect(b == small && bSize == mib / 2)
        #expect(cache.idleBytes == 0)
        cache.give(a, bytes: aSize)
        // 400 KiB: 1 MiB is more than twice that, so a new buffer
        let (c, cSize) = try cache.take(bytes: 400 << 10)
        #expect(c != a && cSize == 400 << 10)
        for (p, size) in [(b, bSize), (c, cSize)] { cache.give(p, bytes: size) }
        #expect(cache.idleBytes == mib + mib / 2 + (400 << 10))
        cache.release()
        #expect(cache.idleBytes == 0)
    }

    @Test func storageHoldsAtLeastWhatItWasAskedFor() throws {
        for count in [1, 1000, 70_000, 300_000] {
            let s = try Storage(count: count)
            #expect(s.bufferBytes >= 4 * count)
        }
    }
}
