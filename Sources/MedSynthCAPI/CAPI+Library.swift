// Library-level C ABI: version, threads, memory statistics.

import MedSynth
import MedSynthCore

import CMedSynth

@c @implementation
public func ms_version(_ buf: UnsafeMutablePointer<CChar>?, _ bufLen: Int) -> Int32 {
    CAPI.copy(medsynthVersion, to: buf, capacity: bufLen)
    return MS_OK
}

@c @implementation
public func ms_get_num_threads() -> Int32 { Int32(ThreadPool.shared.threadCount) }

@c @implementation
public func ms_set_num_threads(_ n: Int32, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        try require(n >= 1 && n <= 256, "the number of threads must be between 1 and 256, got \(n)")
        ThreadPool.shared.setThreadCount(Int(n))
    }
}

@c @implementation
public func ms_memory_current() -> Int64 { Int64(Storage.currentBytes) }

@c @implementation
public func ms_memory_peak() -> Int64 { Int64(Storage.peakBytesSinceReset) }

@c @implementation
public func ms_memory_reset_peak() { Storage.resetPeak() }

@c @implementation
public func ms_registry(_ topic: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?, _ bufLen: Int,
                        _ needed: UnsafeMutablePointer<Int>?, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.text({ try Registry.describe(try CAPI.string(topic, "topic")).serialized }, buf, bufLen, needed, err, errLen)
}
