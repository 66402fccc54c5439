;; Route 5: the import itself is the start function.
(module
  (import "env" "ping" (func $ping))
  (start $ping))
