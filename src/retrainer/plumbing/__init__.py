"""What the operations stand on: the workspace (spec, store and artifacts opened together),
store leases renewed by a heartbeat, reading tables in bounded chunks, and measuring what a
version costs to serve."""
