/* SwiftPM needs one source file in a C target; the C ABI itself is implemented in Swift
   (Sources/MedSynth/CAPI) with @c @implementation against include/medsynth.h. */
