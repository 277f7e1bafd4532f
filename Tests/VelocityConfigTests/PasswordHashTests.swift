import Testing
import VelocityConfig

@Suite struct PasswordHashTests {
    @Test func base64RoundTripsWithAndWithoutPadding() {
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let bytes = Array(text.utf8)
            #expect(Base64.decode(Base64.encode(bytes).utf8) == bytes)
            #expect(Base64.decode(Base64.encode(bytes, padded: false).utf8) == bytes)
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.decode("Zm8=".utf8) == Array("fo".utf8))
        #expect(Base64.decode("Zm8*".utf8) == nil)
        #expect(Base64.decode("Z=m8".utf8) == nil)
        #expect(Base64.decode("Zm8==".utf8) == nil)
    }

    @Test func scryptHashesParseWithinBounds() throws {
        let text =
            "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$" + Base64.encode([UInt8](repeating: 7, count: 32), padded: false)
        let hash = try ScryptHash(parsing: text)
        #expect(hash.logRounds == 15 && hash.blockSize == 8 && hash.parallelism == 1)
        #expect(hash.memory == 32 << 20)
        #expect(hash.encoded == text)
        for bad in [
            "secret", "$2b$10$abcdefghijklmnopqrstuv", "$scrypt$ln=19,r=8,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAA",
            "$scrypt$ln=15,r=8$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAA",
            "$scrypt$ln=15,r=8,p=1$c2Fs$AAAAAAAAAAAAAAAAAAAAAA",
            "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$!!",
        ] {
            #expect(throws: ScryptHashError.self) { try ScryptHash(parsing: bad) }
        }
        // The message never repeats what was submitted, which may be a password.
        do {
            _ = try ScryptHash(parsing: "hunter2")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }
}
