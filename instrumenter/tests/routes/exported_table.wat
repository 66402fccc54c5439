;; Route 4: the import placed in an exported table; the host calls the table entry.
(module
  (import "env" "secret" (func $secret (param i32) (result i32)))
  (table (export "tab") 1 funcref)
  (elem (i32.const 0) func $secret))
