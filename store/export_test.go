package store

// MarkDispatchedSQL is the marker's UPDATE, for the plan test.
const MarkDispatchedSQL = markDispatchedSQL
