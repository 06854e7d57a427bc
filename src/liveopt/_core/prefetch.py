"""Software prefetch for the kernels: ask the CPU to start loading a cache line early.

The variant pass visits live variants in list order, and a variant that has to run its
full span loop (an entry or exit fill, a trailing step) reads a dozen scattered cache
lines of its state and parameter rows: with 10,000 variants those are misses to L3. The
loop knows a few visits ahead which variants those will be, so it requests their lines
while it works on the current one. Numba has no prefetch builtin; this is LLVM's
``llvm.prefetch`` intrinsic (read, high locality, data cache), which compiles to one
``prefetcht0`` instruction and never faults, so any in-range index is safe to pass.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from liveopt._core._jit import njit


@intrinsic
def prefetch_nb(typingctx, array, row, column):
    """``prefetch_nb(array, row, column)``: prefetch the line holding ``array[row, column]``
    of a 2-D array (no wraparound: indices must be in range)."""
    if not isinstance(array, types.Array) or array.ndim != 2:
        return None
    signature = types.void(array, types.intp, types.intp)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view,
                                           [args[1], args[2]], wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0",
        )
        # read (0), high temporal locality (3), data cache (1)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), ir.Constant(i32, 0),
                                ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return signature, codegen


# Fields of 8 bytes per 64-byte cache line.
_FIELDS_PER_LINE = 8


@njit(inline="always")
def prefetch_row_nb(array, row):
    """Prefetch every line of ``array[row, :]`` of a 2-D array of 8-byte fields. Row
    starts are not line-aligned, so one field in every 8 and the last: no two prefetched
    addresses are more than a line apart, so none of the row's lines is skipped."""
    n = array.shape[1]
    for field in range(0, n, _FIELDS_PER_LINE):
        prefetch_nb(array, row, field)
    prefetch_nb(array, row, n - 1)
