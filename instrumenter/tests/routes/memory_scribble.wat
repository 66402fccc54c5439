;; Route 8: the module grows memory and overwrites all of it between two monitored calls.
(module
  (import "env" "secret" (func $secret (param i32) (result i32)))
  (memory (export "memory") 1)
  (func $scribble (param $byte i32)
    (drop (memory.grow (i32.const 3)))
    (memory.fill (i32.const 0) (local.get $byte)
      (i32.mul (memory.size) (i32.const 65536))))
  (func (export "run") (result i32)
    (drop (call $secret (i32.const 1)))
    (call $scribble (i32.const 0))
    (call $scribble (i32.const 0xff))
    (call $scribble (i32.const 0))
    (call $secret (i32.const 42))))
