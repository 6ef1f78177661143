package acidic

// Version is the version of Acidic in this build. Every node records it in
// its row of the nodes table, so `acidic nodes` shows which version each
// node runs (during a rolling deploy, say).
const Version = "0.1.0-dev"
