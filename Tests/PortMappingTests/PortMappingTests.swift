import Testing
import PortMapping

@Suite struct LibMiniUPnPc {
    @Test func linksAgainstTheExpectedAPI() {
        // Debian 12's libminiupnpc-dev: API 17, where UPNP_GetValidIGD takes 5 arguments.
        #expect(UPnPLibrary.apiVersion >= 17)
    }

    @Test func errorTextsComeFromTheLibrary() {
        #expect(UPnPLibrary.describe(errorCode: 718).contains("Conflict"))
    }
}
