// Stands in for Hummingbird in the http fuzz target (Tools/fuzz/run): the gateway's router
// imports Hummingbird only for HTTPTypes' HTTPRequest.Method, which Hummingbird re-exports.
@_exported import HTTPTypes
