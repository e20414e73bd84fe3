"""Convert a DFKD research repository's teacher checkpoint to mmdfkd.

    python tools/convert_teacher.py SRC DST --arch ARCH [--num-classes N]
        [--source {auto,dafl,dfad,zskt,repdistiller,fast,cmi,nayer,gapssg,
                   adadfkd,tadfkd,torchvision,mmpretrain}]

SRC is loaded safely (``weights_only``); its weights (``state_dict`` entry or
a plain state dict, ``module.`` prefixes allowed) are renamed onto the
mmdfkd ``ImageClassifier`` of ARCH (``backbone.*``, ``head.fc.*``) and
checked key by key and shape by shape. Only a complete, exact conversion is
written, as ``{'state_dict', 'meta'}`` at ``<DST stem>-<sha256[:8]>.pth``
(the hash that mmdfkd verifies when loading); the final path is printed.
DST may be a directory, then the file is named after SRC. Anything else
(missing, unexpected or mis-shaped keys, another number of classes) is
reported and nothing is written (exit status 1).

Example: CMI's CIFAR-100 WRN-40-2 teacher::

    python tools/convert_teacher.py cifar100_wrn40_2.pth \\
        checkpoints/wrn40_2_cifar100.pth --arch wrn40_2 --source cmi
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
from mmdfkd.utils.checkpoint import CheckpointError  # noqa: E402
from mmdfkd.utils.teacher_conversion import (  # noqa: E402
    SOURCES, TEACHER_ARCHS, convert_teacher_state_dict,
    load_reference_checkpoint, save_converted_teacher)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert a reference teacher checkpoint to mmdfkd')
    parser.add_argument('src', help='reference checkpoint file')
    parser.add_argument(
        'dst', help='output path (the sha256 prefix is added to the name) '
        'or directory')
    parser.add_argument(
        '--arch', required=True, choices=list(TEACHER_ARCHS),
        help='architecture of the checkpoint')
    parser.add_argument(
        '--num-classes', type=int,
        help='expected number of classes (default: read from the head)')
    parser.add_argument(
        '--source', default='auto', choices=SOURCES,
        help='repository the checkpoint comes from, which fixes its key '
        'layout (default: detect it)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    dst = args.dst
    if osp.isdir(dst) or dst.endswith(('/', osp.sep)):
        dst = osp.join(dst, osp.splitext(osp.basename(args.src))[0] + '.pth')
    try:
        state_dict = load_reference_checkpoint(args.src)
        conversion = convert_teacher_state_dict(
            state_dict, args.arch, source=args.source,
            num_classes=args.num_classes)
        final_path = save_converted_teacher(
            conversion, dst, source_file=args.src)
    except (CheckpointError, FileNotFoundError) as error:
        print(f'convert_teacher: refused, nothing written: {error}',
              file=sys.stderr)
        return 1
    print(f'layout {conversion.layout}, {conversion.num_classes} classes, '
          f'{len(conversion.state_dict)} tensors')
    for note in conversion.notes:
        print(f'note: {note}')
    print(final_path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
