// SLIC superpixels (Achanta et al., "SLIC Superpixels Compared to State-of-the-art Superpixel
// Methods", TPAMI 2012) as scikit-image defines them (skimage/segmentation/slic_superpixels.py
// and _slic.pyx; its optional mask and voxel spacing are not offered here):
//  1. the image is rescaled to [0, 1] by its own minimum and maximum, converted to Lab when it
//     has colour (a gray image as (v, v, v), as lime's gray2rgb passes it) and smoothed by sigma;
//  2. cluster centres start on scikit-image's regular grid (`regular_grid`) with colour 0;
//  3. k-means in (z, y, x, colour / compactness) with spatial weight 1/step², each centre
//     searching a window of ±2 grid steps, for at most max_num_iter rounds or until nothing moves
//     (SLIC-zero divides each cluster's colour distance by its largest seen so far);
//  4. with enforce_connectivity, components smaller than min_size_factor · (pixels / centres)
//     join the neighbouring segment met last in a breadth-first search capped at
//     max_size_factor · (pixels / centres) pixels, exactly as scikit-image's loop does.
// Labels come back as 0..<count (scikit-image's start_label=0).

import MedSynthCore

import Glibc

public struct SLICOptions: Configurable {
    public var segments = 100
    public var compactness = 10.0
    public var maxIterations = 10
    public var sigma = 0.0
    /// nil: Lab for colour images and for gray images (which lime passes as RGB); false: raw values.
    public var convertToLab: Bool? = nil
    public var enforceConnectivity = true
    public var minSizeFactor = 0.5
    public var maxSizeFactor = 3.0
    public var slicZero = false

    public init() {}

    public static let name = "slic"

    /// scikit-image's defaults.
    public static let options: [Option<SLICOptions>] = [
        .int("n_segments", \.segments, "Approximate number of segments (the grid of starting centres)."),
        .double("compactness", \.compactness, "Weight of position against colour; higher gives squarer segments."),
        .int("max_num_iter", \.maxIterations, "Most k-means rounds."),
        .double("sigma", \.sigma, "Gaussian pre-smoothing of the image, 0 for none."),
        Option("convert2lab", "Cluster in CIE Lab: null converts (gray images as (v, v, v), as lime passes them), false clusters the raw values.",
               read: { root, value in
                   if value == .null { root.convertToLab = nil; return }
                   guard let b = value.bool else { throw MedSynthError.invalidArgument("'convert2lab' must be true, false or null") }
                   root.convertToLab = b
               }, write: { $0.convertToLab.map { .bool($0) } ?? .null }),
        .bool("enforce_connectivity", \.enforceConnectivity, "Merge disconnected pieces so that every segment is one connected region."),
        .double("min_size_factor", \.minSizeFactor, "Pieces smaller than this share of pixels / segments join a neighbour."),
        .double("max_size_factor", \.maxSizeFactor, "Largest connected piece the search follows, as a share of pixels / segments."),
        .bool("slic_zero", \.slicZero, "SLIC-zero: each cluster's colour distance scaled by its largest seen so far."),
    ]

    public func validate() throws {
        try require(segments >= 1 && segments <= 1 << 24, "n_segments must be between 1 and 16777216, got \(segments)")
        try require(compactness.isFinite && compactness > 0, "compactness must be a positive number, got \(compactness)")
        try require(maxIterations >= 0 && maxIterations <= 10_000, "max_num_iter must be between 0 and 10000, got \(maxIterations)")
        try require(sigma.isFinite && sigma >= 0 && sigma <= 100, "sigma must be between 0 and 100, got \(sigma)")
        try require(minSizeFactor.isFinite && minSizeFactor >= 0 && minSizeFactor <= 1e6, "min_size_factor must be between 0 and 1e6")
        try require(maxSizeFactor.isFinite && maxSizeFactor > 0 && maxSizeFactor <= 1e6, "max_size_factor must be between 0 and 1e6")
    }
}

public enum SLIC {
    public static func segment(_ image: SegmentationInput, options: SLICOptions = SLICOptions()) throws -> Superpixels {
        try options.validate()
        let (height, width) = (image.height, image.width)
        let pixelCount = image.pixelCount

        // 1. rescale to [0, 1], Lab, smoothing, colour scaled by 1 / compactness
        var rescaled = Array(UnsafeBufferPointer(start: image.pixels, count: pixelCount * image.channels))
        let (low, high) = (rescaled.min() ?? 0, rescaled.max() ?? 0)
        for i in rescaled.indices {
            rescaled[i] -= low
            if high != low { rescaled[i] /= high - low }
        }
        var features: [Double]
        var channels: Int
        if options.convertToLab ?? true {
            features = try rescaled.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return [] }
                return CIELab.convert(try SegmentationInput(pixels: base, height: height, width: width, channels: image.channels))
            }
            channels = 3
        } else {
            features = rescaled
            channels = image.channels
        }
        if options.sigma > 0 {
            // scikit-image smooths the (depth 1, h, w) volume: the depth axis first, a no-op up to rounding
            let w = GaussianSmoothing.kernel(sigma: options.sigma)
            for i in features.indices {
                var sum = features[i] * w[0]
                for j in stride(from: w.count - 1, to: 0, by: -1) { sum += (features[i] + features[i]) * w[j] }
                features[i] = sum
            }
            GaussianSmoothing.smooth(&features, height: height, width: width, channels: channels, sigma: options.sigma)
        }
        let ratio = 1.0 / options.compactness
        for i in features.indices { features[i] *= ratio }

        // 2. centres on the grid: (z, y, x) then colour 0
        let grid = regularGrid(height: height, width: width, points: options.segments)
        var centres: [Double] = []
        let stride = 3 + channels
        for y in Swift.stride(from: grid.start.y, to: height, by: grid.step.y) {
            for x in Swift.stride(from: grid.start.x, to: width, by: grid.step.x) {
                centres += [0, Double(y), Double(x)] + [Double](repeating: 0, count: channels)
            }
        }
        let clusterCount = centres.count / stride
        let step = Double(max(1, grid.step.y, grid.step.x))   // max over (z, y, x) steps; z's is 1

        // 3. k-means
        let assignment = kMeans(features, height: height, width: width, channels: channels, centres: &centres,
                                clusterCount: clusterCount, step: step, options: options)

        // 4. connectivity
        var labels = assignment
        if options.enforceConnectivity {
            let segmentSize = Double(pixelCount) / Double(clusterCount)
            labels = enforceConnectivity(assignment, height: height, width: width,
                                         minSize: Int(options.minSizeFactor * segmentSize),
                                         // a component never exceeds the image: a larger cap changes nothing
                                         maxSize: max(1, min(pixelCount + 1, Int(options.maxSizeFactor * segmentSize))))
        }
        return try Superpixels.consecutive(labels, height: height, width: width)
    }

    /// scikit-image's `regular_grid((1, height, width), points)` for the two image axes: the
    /// first point and the step of each (the depth axis always gets step 1).
    static func regularGrid(height: Int, width: Int, points: Int) -> (start: (y: Int, x: Int), step: (y: Int, x: Int)) {
        let shape = [1, height, width]
        // stable argsort (numpy's for three elements), then its inverse
        let order = shape.indices.sorted { shape[$0] < shape[$1] || (shape[$0] == shape[$1] && $0 < $1) }
        var unsort = [Int](repeating: 0, count: 3)
        for (rank, axis) in order.enumerated() { unsort[axis] = rank }
        let sorted = order.map { Double(shape[$0]) }
        var space = sorted.reduce(1, *)
        guard space > Double(points) else { return ((0, 0), (1, 1)) }
        var steps = [Double](repeating: pow(space / Double(points), 1.0 / 3.0), count: 3)
        if zip(sorted, steps).contains(where: { $0 < $1 }) {
            for dim in 0..<2 {
                steps[dim] = sorted[dim]
                space = sorted[(dim + 1)...].reduce(1, *)
                for j in (dim + 1)..<3 { steps[j] = pow(space / Double(points), 1.0 / Double(3 - dim - 1)) }
                if !zip(sorted, steps).contains(where: { $0 < $1 }) { break }
            }
        }
        let starts = steps.map { Int(($0 / 2).rounded(.down)) }
        let rounded = steps.map { max(1, Int($0.rounded(.toNearestOrEven))) }
        return ((starts[unsort[1]], starts[unsort[2]]), (rounded[unsort[1]], rounded[unsort[2]]))
    }

    /// SLIC's k-means (`_slic_cython`); returns each pixel's cluster (−1 if no window reached it).
    static func kMeans(_ features: [Double], height: Int, width: Int, channels: Int, centres: inout [Double],
                       clusterCount: Int, step: Double, options: SLICOptions) -> [Int] {
        let stride = 3 + channels
        let window = regularGrid(height: height, width: width, points: clusterCount).step
        let spatialWeight = 1.0 / (step * step)
        let pixels = height * width
        var nearest = [Int](repeating: -1, count: pixels)
        var distance = [Double](repeating: 0, count: pixels)
        var maxColourDistance = [Double](repeating: 1, count: clusterCount)
        var members = [Int](repeating: 0, count: clusterCount)
        let bands = ThreadPool.shared.threadCount
        var changedIn = [Bool](repeating: false, count: bands)
        features.withUnsafeBufferPointer { fb in
        centres.withUnsafeMutableBufferPointer { cb in
        nearest.withUnsafeMutableBufferPointer { nb in
        distance.withUnsafeMutableBufferPointer { db in
        maxColourDistance.withUnsafeMutableBufferPointer { mb in
        members.withUnsafeMutableBufferPointer { countb in
        changedIn.withUnsafeMutableBufferPointer { flags in
            guard let f = fb.baseAddress, let centre = cb.baseAddress, let near = nb.baseAddress, let dist = db.baseAddress,
                  let maxColour = mb.baseAddress, let count = countb.baseAddress, let flag = flags.baseAddress else { return }
            for _ in 0..<options.maxIterations {
                dist.update(repeating: Double.greatestFiniteMagnitude, count: pixels)
                flag.update(repeating: false, count: bands)
                // bands of rows in parallel: every pixel still meets the clusters in scikit-image's order
                ThreadPool.shared.run(count: height, maxParticipants: bands) { band, lo, hi in
                    let changed: Bool
                    if channels == 3 {
                        changed = assignBand(lo, hi, f, centre, near, dist, maxColour, width: width, height: height, channels: 3,
                                             clusterCount: clusterCount, window: window, spatialWeight: spatialWeight,
                                             slicZero: options.slicZero)
                    } else {
                        changed = assignBand(lo, hi, f, centre, near, dist, maxColour, width: width, height: height, channels: channels,
                                             clusterCount: clusterCount, window: window, spatialWeight: spatialWeight,
                                             slicZero: options.slicZero)
                    }
                    flag[band] = changed
                }
                if !(0..<bands).contains(where: { flag[$0] }) { break }
                // new centres: the mean position and colour of each cluster's pixels
                count.update(repeating: 0, count: clusterCount)
                centre.update(repeating: 0, count: clusterCount * stride)
                for y in 0..<height {
                    for x in 0..<width {
                        let k = near[y &* width &+ x]
                        guard k >= 0 else { continue }
                        count[k] += 1
                        let c = centre + k &* stride
                        c[1] += Double(y)
                        c[2] += Double(x)
                        let pixel = f + (y &* width &+ x) &* channels
                        for j in 0..<channels { c[3 &+ j] += pixel[j] }
                    }
                }
                for k in 0..<clusterCount {
                    let c = centre + k &* stride
                    for j in 0..<stride { c[j] /= Double(count[k]) }   // 0/0 = NaN for an emptied cluster
                }
                if options.slicZero {
                    for i in 0..<pixels {
                        let k = near[i]
                        guard k >= 0 else { continue }
                        var colour = 0.0
                        let (pixel, c) = (f + i &* channels, centre + k &* stride)
                        for j in 0..<channels {
                            let t = pixel[j] - c[3 &+ j]
                            colour += t * t
                        }
                        if maxColour[k] < colour { maxColour[k] = colour }
                    }
                }
            }
        }}}}}}}
        return nearest
    }

    /// The assignment step for rows [lo, hi): each pixel takes the cluster at the smallest
    /// distance (the first such cluster), clusters visited in order; true if a pixel changed.
    @inline(__always)
    static func assignBand(_ lo: Int, _ hi: Int, _ f: UnsafePointer<Double>, _ centres: UnsafePointer<Double>,
                           _ nearest: UnsafeMutablePointer<Int>, _ distance: UnsafeMutablePointer<Double>,
                           _ maxColourDistance: UnsafePointer<Double>, width: Int, height: Int, channels: Int, clusterCount: Int,
                           window: (y: Int, x: Int), spatialWeight: Double, slicZero: Bool) -> Bool {
        let stride = 3 + channels
        var changed = false
        for k in 0..<clusterCount {
            let centre = centres + k &* stride
            let (cz, cy, cx) = (centre[0], centre[1], centre[2])
            guard cy.isFinite && cx.isFinite else { continue }   // an emptied cluster (0/0) reaches no pixel
            let y0 = max(lo, Int(max(cy - Double(2 * window.y), 0))), y1 = min(hi, Int(min(cy + Double(2 * window.y + 1), Double(height))))
            let x0 = Int(max(cx - Double(2 * window.x), 0)), x1 = Int(min(cx + Double(2 * window.x + 1), Double(width)))
            guard y0 < y1 && x0 < x1 else { continue }
            var dz = cz - 0   // the one slice, z = 0
            dz *= dz
            let colourScale = slicZero ? maxColourDistance[k] : 1
            for y in y0..<y1 {
                var dy = cy - Double(y)
                dy *= dy
                let row = y &* width
                for x in x0..<x1 {
                    var dx = cx - Double(x)
                    dx *= dx
                    var d = (dz + dy + dx) * spatialWeight
                    var colour = 0.0
                    let pixel = f + (row &+ x) &* channels
                    for c in 0..<channels {
                        let t = pixel[c] - centre[3 &+ c]
                        colour += t * t
                    }
                    if slicZero { colour /= colourScale }
                    d += colour
                    if distance[row &+ x] > d {
                        nearest[row &+ x] = k
                        distance[row &+ x] = d
                        changed = true
                    }
                }
            }
        }
        return changed
    }

    /// `_enforce_label_connectivity_cython` on one slice: 4-connected components in scan order;
    /// one smaller than minSize takes the label of the last labelled neighbour its search met.
    static func enforceConnectivity(_ segments: [Int], height: Int, width: Int, minSize: Int, maxSize: Int) -> [Int] {
        let unlabelled = -1
        var connected = [Int](repeating: unlabelled, count: segments.count)
        var newLabel = 0
        var queue = [Int](repeating: 0, count: maxSize)
        let moves = [(1, 0), (-1, 0), (0, 1), (0, -1)]   // (dx, dy) in scikit-image's order; z moves leave the slice
        for start in segments.indices where segments[start] != unlabelled && connected[start] == unlabelled {
            var adjacent = newLabel
            let label = segments[start]
            connected[start] = newLabel
            var size = 1, visited = 0
            queue[0] = start
            search: while visited < size && size < maxSize {
                let (y, x) = (queue[visited] / width, queue[visited] % width)
                for (dx, dy) in moves {
                    let (xx, yy) = (x + dx, y + dy)
                    guard xx >= 0 && xx < width && yy >= 0 && yy < height else { continue }
                    let j = yy * width + xx
                    if segments[j] == label && connected[j] == unlabelled {
                        connected[j] = newLabel
                        queue[size] = j
                        size += 1
                        if size >= maxSize { visited += 1; continue search }
                    } else if connected[j] > unlabelled && connected[j] != newLabel {
                        adjacent = connected[j]
                    }
                }
                visited += 1
            }
            if size < minSize {
                for i in 0..<size { connected[queue[i]] = adjacent }
            } else {
                newLabel += 1
            }
        }
        return connected
    }
}
