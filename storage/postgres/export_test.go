package postgres

// StateBit exposes stateBit to the external tests.
var StateBit = stateBit
