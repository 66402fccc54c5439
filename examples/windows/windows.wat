;; windows.wat: a guest that opens and closes windows through its host's custom imports
;; `env.open_window(width, height) -> handle` (a negative handle means the host refused)
;; and `env.close_window(handle)`.
;;
;; What it does is given as a script in its first argument, one letter per action:
;;   o  open a 640x480 window
;;   x  ask for a 0x0 window, which the host refuses (a failed open opens nothing)
;;   c  close the most recently opened window that is still open
;; The default script, "ooocoo", opens three windows, closes one, opens another and then
;; tries to have four open at once. Under policies/max-windows.pol the last open is
;; stopped; every other step is allowed.
(module
  (import "env" "open_window" (func $open_window (param i32 i32) (result i32)))
  (import "env" "close_window" (func $close_window (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))

  ;; Memory map:
  ;;     0..64     scratch: iovec (0), written (8), argc (24), argv buffer size (28)
  ;;    64..1024   constant strings
  ;;  1024..2048   the output line being built
  ;;  2048..2304   handles of the open windows, a stack of at most 64
  ;;  4096..5120   argv pointers
  ;;  8192..12288  argv strings
  (memory (export "memory") 1)

  (global $OUT i32 (i32.const 1024))
  (global $out_len (mut i32) (i32.const 0))
  (global $HANDLES i32 (i32.const 2048))
  (global $MAX_HANDLES i32 (i32.const 64))
  (global $open (mut i32) (i32.const 0))

  (data (i32.const 64)  "ooocoo")                                   ;; default script, 6
  (data (i32.const 80)  "windows: opened window ")                  ;; 23
  (data (i32.const 112) " (")                                       ;; 2
  (data (i32.const 120) " open)")                                   ;; 6
  (data (i32.const 128) "windows: the host refused a window")       ;; 34
  (data (i32.const 176) "windows: closed window ")                  ;; 23
  (data (i32.const 208) "windows: nothing to close")                ;; 25
  (data (i32.const 240) "windows: unknown action '")                ;; 25
  (data (i32.const 272) "', expected o, x or c")                    ;; 21
  (data (i32.const 304) "windows: done, ")                          ;; 15
  (data (i32.const 320) " still open")                              ;; 11
  (data (i32.const 336) "windows: too many windows for this guest") ;; 40

  (func $out_str (param $p i32) (param $n i32)
    (memory.copy (i32.add (global.get $OUT) (global.get $out_len)) (local.get $p) (local.get $n))
    (global.set $out_len (i32.add (global.get $out_len) (local.get $n))))

  (func $out_byte (param $b i32)
    (i32.store8 (i32.add (global.get $OUT) (global.get $out_len)) (local.get $b))
    (global.set $out_len (i32.add (global.get $out_len) (i32.const 1))))

  ;; Appends $v in decimal, with a sign when negative.
  (func $out_i32 (param $v i32)
    (if (i32.lt_s (local.get $v) (i32.const 0))
      (then
        (call $out_byte (i32.const 45))
        (local.set $v (i32.sub (i32.const 0) (local.get $v)))))
    (if (i32.ge_u (local.get $v) (i32.const 10))
      (then (call $out_i32 (i32.div_u (local.get $v) (i32.const 10)))))
    (call $out_byte (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10)))))

  (func $out_line (param $fd i32)
    (call $out_byte (i32.const 10))
    (i32.store (i32.const 0) (global.get $OUT))
    (i32.store (i32.const 4) (global.get $out_len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (global.set $out_len (i32.const 0)))

  (func $open (param $w i32) (param $h i32)
    (local $handle i32)
    (if (i32.ge_u (global.get $open) (global.get $MAX_HANDLES))
      (then
        (call $out_str (i32.const 336) (i32.const 40))
        (call $out_line (i32.const 2))
        (call $proc_exit (i32.const 1))))
    (local.set $handle (call $open_window (local.get $w) (local.get $h)))
    (if (i32.lt_s (local.get $handle) (i32.const 0))
      (then
        (call $out_str (i32.const 128) (i32.const 34))
        (call $out_line (i32.const 1))
        (return)))
    (i32.store (i32.add (global.get $HANDLES) (i32.shl (global.get $open) (i32.const 2)))
               (local.get $handle))
    (global.set $open (i32.add (global.get $open) (i32.const 1)))
    (call $out_str (i32.const 80) (i32.const 23))
    (call $out_i32 (local.get $handle))
    (call $out_str (i32.const 112) (i32.const 2))
    (call $out_i32 (global.get $open))
    (call $out_str (i32.const 120) (i32.const 6))
    (call $out_line (i32.const 1)))

  (func $close
    (local $handle i32)
    (if (i32.eqz (global.get $open))
      (then
        (call $out_str (i32.const 208) (i32.const 25))
        (call $out_line (i32.const 1))
        (return)))
    (global.set $open (i32.sub (global.get $open) (i32.const 1)))
    (local.set $handle
      (i32.load (i32.add (global.get $HANDLES) (i32.shl (global.get $open) (i32.const 2)))))
    (call $close_window (local.get $handle))
    (call $out_str (i32.const 176) (i32.const 23))
    (call $out_i32 (local.get $handle))
    (call $out_str (i32.const 112) (i32.const 2))
    (call $out_i32 (global.get $open))
    (call $out_str (i32.const 120) (i32.const 6))
    (call $out_line (i32.const 1)))

  (func $main (export "_start")
    (local $script i32) (local $i i32) (local $c i32)
    (local.set $script (i32.const 64))
    (if (i32.eqz (call $args_sizes_get (i32.const 24) (i32.const 28)))
      (then
        (if (i32.and (i32.ge_u (i32.load (i32.const 24)) (i32.const 2))
                     (i32.and (i32.le_u (i32.load (i32.const 24)) (i32.const 256))
                              (i32.le_u (i32.load (i32.const 28)) (i32.const 4096))))
          (then
            (if (i32.eqz (call $args_get (i32.const 4096) (i32.const 8192)))
              (then (local.set $script (i32.load (i32.const 4100)))))))))
    ;; The default script lives in a data segment without a terminator, so it is
    ;; walked by its length; argv strings end at their NUL.
    (block $done
      (loop $next
        (if (i32.eq (local.get $script) (i32.const 64))
          (then (br_if $done (i32.ge_u (local.get $i) (i32.const 6)))))
        (local.set $c (i32.load8_u (i32.add (local.get $script) (local.get $i))))
        (br_if $done (i32.eqz (local.get $c)))
        (block $handled
          (if (i32.eq (local.get $c) (i32.const 111)) ;; 'o'
            (then (call $open (i32.const 640) (i32.const 480)) (br $handled)))
          (if (i32.eq (local.get $c) (i32.const 120)) ;; 'x'
            (then (call $open (i32.const 0) (i32.const 0)) (br $handled)))
          (if (i32.eq (local.get $c) (i32.const 99))  ;; 'c'
            (then (call $close) (br $handled)))
          (call $out_str (i32.const 240) (i32.const 25))
          (call $out_byte (local.get $c))
          (call $out_str (i32.const 272) (i32.const 21))
          (call $out_line (i32.const 2))
          (call $proc_exit (i32.const 2)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $out_str (i32.const 304) (i32.const 15))
    (call $out_i32 (global.get $open))
    (call $out_str (i32.const 320) (i32.const 11))
    (call $out_line (i32.const 1))))
