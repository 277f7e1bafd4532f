/// How far routing of one request has got: the handler to run next, in the site's routes or a subroute's,
/// the request as earlier handlers changed it, and what they asked of the response. A value, so a request that
/// waits for work off the event loop keeps its place without holding anything else.
public struct RouteCursor: Sendable {
    public var request: RoutingRequest
    public var decorations = ResponseDecorations()

    /// One list of routes being walked; subroutes push a frame, and finishing one pops back to its parent.
    private struct Frame: Sendable {
        let routes: [Route]
        var route = -1
        var handler = 0
    }

    /// The innermost frame, kept apart from its parents so that a request outside subroutes allocates nothing.
    private var frame: Frame
    private var parents: [Frame] = []
    private var finished = false

    init(request: RoutingRequest, routes: [Route]) {
        self.request = request
        frame = Frame(routes: routes)
    }

    /// The next handler to run: the following one in the current route, or the first of the next route that
    /// matches (unless the current route was terminal); nil when every frame is finished.
    mutating func advance() -> Handler? {
        while !finished {
            if frame.route >= 0 {
                let route = frame.routes[frame.route]
                if frame.handler < route.handlers.count {
                    frame.handler += 1
                    return route.handlers[frame.handler - 1]
                }
                if route.terminal {
                    guard leave() else { return nil }
                    continue
                }
            }
            if let next = frame.routes[(frame.route + 1)...].firstIndex(where: { $0.matches(request) }) {
                frame.route = next
                frame.handler = 0
            } else {
                guard leave() else { return nil }
            }
        }
        return nil
    }

    mutating func enter(_ routes: [Route]) {
        parents.append(frame)
        frame = Frame(routes: routes)
    }

    /// Returns to the enclosing frame; false at the outermost one, which is then finished for good.
    private mutating func leave() -> Bool {
        guard let parent = parents.popLast() else {
            finished = true
            return false
        }
        frame = parent
        return true
    }
}
