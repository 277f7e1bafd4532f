import Foundation
import HTTPTypes
import VelocityConfig
import VelocityHTTP

// Routes the same mix of requests (exact hosts, wildcard hosts, unknown hosts; three routes per site with
// path and method matchers) through routers of growing size, and prints nanoseconds per request. A flat
// column means lookup does not scan the sites.
// Run: swift run -c release RoutingBenchmark

func config(sites count: Int) throws -> VelocityConfig {
    var sites: [JSONValue] = []
    for index in 0..<count {
        let routes: JSONValue = [
            [
                "match": [["path": ["/api/*"], "method": ["POST"]]],
                "handle": [["handler": "static_response", "body": "api"]],
            ],
            ["match": [["path": ["*.css"]]], "handle": [["handler": "static_response", "body": "css"]]],
            ["handle": [["handler": "static_response", "body": .string("site \(index)")]]],
        ]
        sites.append(["hosts": [.string("site\(index).example"), .string("*.wild\(index).example")], "routes": routes])
    }
    let document: JSONValue = ["sites": .array(sites)]
    return try ConfigValidator.validate(document, context: ValidationContext(adminAddress: nil)).config
}

func requests(sites count: Int) -> [RoutingRequest] {
    var generator = SystemRandomNumberGenerator()
    return (0..<4096).map { index in
        let site = Int.random(in: 0..<count, using: &generator)
        let host: String
        switch index % 3 {
        case 0: host = "site\(site).example"
        case 1: host = "www.wild\(site).example"
        default: host = "unknown\(site).example"
        }
        let path = index % 2 == 0 ? "/static/app.css" : "/index.html"
        let request = HTTPRequest(method: .get, scheme: "https", authority: host, path: path)
        return RoutingRequest(request: request, remoteAddress: nil)
    }
}

print("sites    ns/request   (median of 5 rounds of 1,000,000 requests, release build)")
var sink = 0
for count in [10, 100, 1_000, 10_000] {
    let router = Router(config: try config(sites: count))
    let batch = requests(sites: count)
    var rounds: [Double] = []
    for _ in 0..<5 {
        let start = ContinuousClock.now
        for index in 0..<1_000_000 {
            var cursor = router.start(batch[index & 4095])
            if case .respond(let response) = router.next(&cursor) { sink &+= response.body.readableBytes }
        }
        let elapsed = (ContinuousClock.now - start).components
        let nanoseconds = Double(elapsed.seconds) * 1e9 + Double(elapsed.attoseconds) / 1e9
        rounds.append(nanoseconds / 1_000_000)
    }
    print(String(format: "%6d   %8.1f", count, rounds.sorted()[2]))
}
if sink == 0 { print("(no responses)") }  // keeps the work observable to the optimizer
