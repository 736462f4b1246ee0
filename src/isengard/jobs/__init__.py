"""The job's life on the database side, one owner: its state machine (`states`), its persisted events
(`history`), the records its artifacts become (`artifacts`, `records_*`), and putting back on the queue whatever
Redis lost (`recovery`). `isengard.queue` below it speaks only Redis."""
