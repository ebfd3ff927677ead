"""Oneof rules, as Confluent's newer `MessageSchemaDiff` and `OneOfDiff` have them.

A oneof makes its members exclude each other. Fields that old data could set together must not end up in
one oneof: each original oneof, and each original field outside any oneof, is one "group", and a oneof of
the reader holding members of more than one group is incompatible (MULTIPLE_FIELDS_MOVED_TO_ONEOF when
more than one field came in from outside any oneof, FIELD_MOVED_TO_EXISTING_ONEOF otherwise). This covers
a field moved from one oneof into another and two oneofs merged.

Oneofs are matched by name. A oneof whose name is gone is also matched with the reader's new oneof that
took over its surviving members (a rename), so that a member dropped while renaming is still reported as
ONEOF_FIELD_REMOVED; Confluent reports only the compatible ONEOF_REMOVED and ONEOF_ADDED there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from google.protobuf import descriptor_pb2

from kschema.compat.protobuf.types import TypeInfo, union

__all__ = ["MessageFields", "check_membership", "compare_oneofs"]


class Comparer(Protocol):
    def add(self, rule: str, location: str, message: str) -> None: ...

    def compare_fields(
        self,
        old: descriptor_pb2.FieldDescriptorProto,
        new: descriptor_pb2.FieldDescriptorProto,
        old_owner: TypeInfo,
        new_owner: TypeInfo,
        where: str,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class MessageFields:
    """A message's fields by number, split by oneof membership."""

    all: dict[int, descriptor_pb2.FieldDescriptorProto]
    top: dict[int, descriptor_pb2.FieldDescriptorProto]  # outside any oneof
    oneof_of: dict[int, str]  # member number -> oneof name
    oneofs: dict[str, list[int]]  # oneof name -> member numbers, in declaration order

    @classmethod
    def of(cls, msg: descriptor_pb2.DescriptorProto) -> MessageFields:
        oneof_of: dict[int, str] = {}
        for fld in msg.field:
            # Real oneofs only, not the synthetic ones of proto3 `optional`.
            if (
                fld.HasField("oneof_index")
                and not fld.proto3_optional
                and fld.oneof_index < len(msg.oneof_decl)
            ):
                oneof_of[fld.number] = msg.oneof_decl[fld.oneof_index].name
        oneofs: dict[str, list[int]] = {}
        for fld in msg.field:
            if fld.number in oneof_of:
                oneofs.setdefault(oneof_of[fld.number], []).append(fld.number)
        return cls(
            all={f.number: f for f in msg.field},
            top={f.number: f for f in msg.field if f.number not in oneof_of},
            oneof_of=oneof_of,
            oneofs=oneofs,
        )


def check_membership(cmp: Comparer, local: str, old: MessageFields, new: MessageFields) -> set[int]:
    """Reports reader oneofs that make fields exclusive which old data could set together. Returns the
    numbers of writer fields outside any oneof that moved into one (they are not removed fields)."""
    moved_in: set[int] = set()
    for name, numbers in new.oneofs.items():
        groups: set[str] = set()
        from_top_level: list[int] = []
        for number in numbers:
            if number in old.oneof_of:
                groups.add(f"oneof {old.oneof_of[number]!r}")
            elif number in old.all:
                groups.add(f"field {old.all[number].name!r}")
                from_top_level.append(number)
                moved_in.add(number)
            # A brand-new member: old data never set it.
        if len(groups) <= 1:
            continue
        where = f"/{local}/oneofs/{name}"
        origins = ", ".join(sorted(groups))
        if len(from_top_level) > 1:
            cmp.add(
                "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
                where,
                f"oneof {name!r} now holds fields that old data could set together ({origins}); data that "
                "sets more than one of them cannot be read",
            )
        else:
            cmp.add(
                "FIELD_MOVED_TO_EXISTING_ONEOF",
                where,
                f"oneof {name!r} now holds fields that old data could set together ({origins}); data that "
                "sets more than one of them cannot be read",
            )
    return moved_in


def _pairs(old: MessageFields, new: MessageFields) -> dict[str, str]:
    """Writer oneof name -> reader oneof name: by name, then renamed oneofs by their surviving members."""
    pairs = {name: name for name in old.oneofs if name in new.oneofs}
    taken = set(pairs.values())
    for name, numbers in old.oneofs.items():
        if name in pairs:
            continue
        votes = Counter(
            new.oneof_of[n]
            for n in numbers
            if n in new.oneof_of and new.oneof_of[n] not in old.oneofs and new.oneof_of[n] not in taken
        )
        if votes:
            # Most members taken over; ties go to the first name in order, for a stable answer.
            best = min(votes, key=lambda candidate: (-votes[candidate], candidate))
            pairs[name] = best
            taken.add(best)
    return pairs


def compare_oneofs(
    cmp: Comparer, old_info: TypeInfo, new_info: TypeInfo, old: MessageFields, new: MessageFields
) -> None:
    local = old_info.local_name
    pairs = _pairs(old, new)
    for name in union(old.oneofs, new.oneofs):
        where = f"/{local}/oneofs/{name}"
        if name not in new.oneofs:
            renamed = f" (its members are now in oneof {pairs[name]!r})" if name in pairs else ""
            cmp.add("ONEOF_REMOVED", where, f"oneof {name!r} was removed{renamed}")
        elif name not in old.oneofs:
            cmp.add("ONEOF_ADDED", where, f"oneof {name!r} was added")
        if name in pairs:
            _compare_pair(cmp, old_info, new_info, name, pairs[name], old, new)


def _compare_pair(
    cmp: Comparer,
    old_info: TypeInfo,
    new_info: TypeInfo,
    old_name: str,
    new_name: str,
    old: MessageFields,
    new: MessageFields,
) -> None:
    local = old_info.local_name
    old_set, new_set = set(old.oneofs[old_name]), set(new.oneofs[new_name])
    renamed = old_name != new_name
    for number in sorted(old_set | new_set):
        where = f"/{local}/oneofs/{old_name}/{number}"
        if number not in new_set:
            # A member that left the oneof but still exists elsewhere was relocated, not removed.
            if number not in new.all:
                into = f" (renamed to {new_name!r})" if renamed else ""
                cmp.add(
                    "ONEOF_FIELD_REMOVED",
                    where,
                    f"field {old.all[number].name!r} ({number}) was removed from oneof {old_name!r}{into}",
                )
        elif number not in old_set:
            if not renamed:
                cmp.add(
                    "ONEOF_FIELD_ADDED",
                    where,
                    f"field {new.all[number].name!r} ({number}) was added to oneof {new_name!r}",
                )
        elif not renamed:
            # Members of a renamed oneof changed membership; the by-number pass compares them.
            cmp.compare_fields(old.all[number], new.all[number], old_info, new_info, where)
