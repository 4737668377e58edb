// Placeholder until the flow key parser is written.
