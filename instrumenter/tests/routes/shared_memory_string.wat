;; Route 10: a string argument lives in a shared memory another thread could change.
(module
  (import "env" "log" (func $log (param i32 i32)))
  (memory 1 1 shared)
  (data (i32.const 16) "/etc/passwd")
  (func (export "run") (call $log (i32.const 16) (i32.const 11))))
