"""Campaign-list imports: accept a file, run it in chunks with bulk deduplication, and undo it.

The worker reads the file as a stream, normalizing the next chunk in a thread while the current one
is written, and handles 1,000 rows per transaction: the chunk takes web-form intake's advisory locks
for its e-mails and phones in one statement, one query finds its duplicates in the database, new
leads and their history/tags/timeline rows are written with COPY, and matched leads are filled in
with one set-based UPDATE of just the columns that change (the same rules as single-lead intake:
empty fields are filled, a differing value is kept on the timeline as ``field_conflict``). Every
lead written is marked dirty in that same write; the pipeline scores them all after the job. The
job's counters are updated in the same transaction as the chunk's rows, so they are always true and
a job that dies half-way resumes exactly after the last committed chunk.

On PostgreSQL two connections (``LEADCRM_IMPORT_WRITERS``) write alternate chunks side by side, so the
database's share of the work (indexes, foreign-key checks at commit) runs in two backends on two
cores; ``_Turns`` keeps their locks and commits in file order (see there why that is enough).
"""

from __future__ import annotations

import functools
import heapq
import io
import json
import queue
import sys
import threading
import uuid
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import islice, repeat
from operator import itemgetter
from typing import IO, Any, cast
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import connection, transaction
from django.db.models import CASCADE, SET_NULL, F, ForeignObjectRel, Model, Q, Value, signals
from django.db.models import Field as ModelField
from django.db.models.deletion import get_candidate_relations_to_delete
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from common.collector import fewer_collections
from common.normalize import normalize_text
from leads.imports import reading
from leads.imports.mapping import complete_mapping, guess_mapping, mapping_errors
from leads.imports.rows import Row, RowBuilder, raw_row
from leads.models import (
    Campaign,
    FormSubmission,
    ImportJob,
    ImportRowError,
    ImportSkipBatch,
    ImportStatus,
    ImportUpdate,
    Interaction,
    Lead,
    LeadMerge,
    LeadStageChange,
    OnDuplicate,
    SkipKind,
    SourceChannel,
    Stage,
    Tag,
    Task,
    Visitor,
)
from leads.services.intake import FIELD_CONFLICT, FIRST_TOUCH
from leads.services.pipeline import leads_mark_dirty, pipeline_enqueue_on_commit
from users.models import User

# Rows per transaction. Each chunk holds up to two intake advisory locks per row until it commits, and
# PostgreSQL's lock table is shared by every session (about 12,000 locks with the default
# max_locks_per_transaction = 64 and 100 connections): 1,000 rows leave room for several concurrent imports.
CHUNK_ROWS = 1000
PREVIEW_ROWS = 20
IMPORT_EVENT = "import"
# Fields an import fills on a matched lead when they are empty there (identity fields are already equal).
FILLABLE = (
    "name", "email", "phone", "company", "job_title", "website", "industry", "company_size", "country",
    "region", "city", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
)  # fmt: skip
# Existing leads are read with just what the merge needs.
MATCH_FIELDS = ("id", "import_job_id", "campaign_id", "source", "attributes", *FILLABLE)
# Types of events that mean a person worked on a lead (undo keeps such leads).
SYSTEM_EVENTS = (IMPORT_EVENT, FIELD_CONFLICT)


@dataclass(frozen=True)
class ImportPreview:
    kind: str
    encoding: str
    delimiter: str
    headers: list[str]
    mapping: dict[str, str]
    rows: list[tuple[int, list[str]]]


def _raw_file(file: Any) -> IO[bytes]:
    """The seekable binary file under Django's File / UploadedFile wrappers."""
    inner = file
    while not isinstance(inner, io.IOBase) and hasattr(inner, "file"):
        inner = inner.file
    return inner


def _inspect_upload(file: Any) -> reading.FileInfo:
    """Check size, type and content; a field-level ValidationError on ``file`` for any unusable upload."""
    if file is None:
        raise ValidationError({"file": [_("Choose a file to import.")]})
    limit = settings.LEADCRM_IMPORT_MAX_BYTES
    if file.size is not None and file.size > limit:
        raise ValidationError(
            {"file": [_("The file is larger than %(mb)s MB; split it into smaller files.") % {"mb": limit // 2**20}]}
        )
    try:
        return reading.inspect(_raw_file(file), file.name or "")
    except reading.ImportFileError as exc:
        raise ValidationError({"file": [str(exc)]}) from None


def _checked_mapping(mapping: Mapping[str, str] | None, headers: list[str]) -> dict[str, str]:
    if mapping is not None and not isinstance(mapping, Mapping):
        raise ValidationError({"mapping": [_("The mapping must be an object: {column: field}.")]})
    full = complete_mapping(mapping, headers)
    errors = mapping_errors(full, headers)
    if errors:
        raise ValidationError({"mapping": errors})
    return full


def import_preview(*, file: Any, mapping: Mapping[str, str] | None = None) -> ImportPreview:
    """The first rows, the guessed (or given) mapping and what was detected, without writing anything."""
    info = _inspect_upload(file)
    full = guess_mapping(info.headers) if mapping is None else _checked_mapping(mapping, info.headers)
    rows = list(islice(reading.data_rows(_raw_file(file), info), PREVIEW_ROWS))
    return ImportPreview(
        kind=info.kind, encoding=info.encoding, delimiter=info.delimiter, headers=info.headers, mapping=full, rows=rows
    )


def import_create(
    *,
    file: Any,
    by: User | None,
    mapping: Mapping[str, str] | None = None,
    campaign: Campaign | None = None,
    source: str = SourceChannel.IMPORT,
    tags: Iterable[str] = (),
    on_duplicate: str = OnDuplicate.SKIP,
) -> ImportJob:
    """Validate and store the file, then start the job once the transaction commits; nothing is saved for a bad file."""
    info = _inspect_upload(file)
    full = _checked_mapping(mapping, info.headers)
    errors: dict[str, list[str]] = {}
    if on_duplicate not in OnDuplicate.values:
        errors["on_duplicate"] = [_("Choose one of: %(choices)s.") % {"choices": ", ".join(OnDuplicate.values)}]
    if source not in SourceChannel.values:
        errors["source"] = [_("Unknown source “%(source)s”.") % {"source": source}]
    tag_names = sorted({normalize_text(t) for t in tags if normalize_text(t)})
    if any(len(t) > 50 for t in tag_names):
        errors["tags"] = [_("A tag has at most 50 characters.")]
    if errors:
        raise ValidationError(errors)
    name = (file.name or "import").rsplit("/", 1)[-1]
    extension = "xlsx" if info.kind == "xlsx" else "csv"
    with transaction.atomic():
        job = ImportJob(
            original_filename=name[:255],
            mapping=full,
            campaign=campaign,
            source=source,
            tags=tag_names,
            on_duplicate=on_duplicate,
            encoding=info.encoding,
            delimiter=info.delimiter,
            created_by=by,
        )
        raw = _raw_file(file)
        raw.seek(0)
        # A random stored name: the original one is kept for display only.
        job.file.save(f"{uuid.uuid4().hex}.{extension}", File(raw), save=False)
        job.save()
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def import_file_headers(*, job: ImportJob) -> list[str]:
    """The file's columns in file order (the stored mapping is a JSON object, whose key order PostgreSQL drops)."""
    try:
        with job.file.open("rb") as stored, _stored_list(job, _raw_file(stored)) as listed:
            return listed.headers
    except (OSError, ValueError, reading.ImportFileError):
        return sorted(job.mapping)


def import_error_rows(*, job: ImportJob) -> Iterator[tuple[int, str, dict[str, str]]]:
    """The job's skipped and rejected rows in line order: line number, reason, the row as the file has it.

    Two records are merged: a rejected row's ``ImportRowError`` (reason and cells stored) and each
    chunk's ``ImportSkipBatch`` (the skipped duplicates, worded here in the current language). A row
    with no stored cells gets them from the job's file, read once, alongside, as far as the last such
    line: the rows come back as they were uploaded. If the file cannot be read any more, such a row's
    cells are empty; its line and reason remain.
    """
    records = ImportRowError.objects.filter(job=job).order_by("line_number", "id")
    errors = records.values_list("line_number", "reason", "row").iterator(chunk_size=2000)
    file_rows: Generator[tuple[int, dict[str, str]], None, None] | None = None
    at: tuple[int, dict[str, str]] = (0, {})
    try:
        for line, reason, stored in heapq.merge(errors, _skipped_rows(job), key=itemgetter(0)):
            if not stored:
                if file_rows is None:
                    file_rows = _file_rows(job)
                while at[0] < line:
                    at = next(file_rows, (sys.maxsize, {}))
                stored = at[1] if at[0] == line else {}
            yield line, reason, stored
    finally:
        if file_rows is not None:
            file_rows.close()


def _skipped_rows(job: ImportJob) -> Iterator[tuple[int, str, dict[str, str]]]:
    """The job's skipped duplicates from its batches, in line order, with their reasons and no cells."""
    reason = _SkipReasons()
    batches = ImportSkipBatch.objects.filter(job=job).order_by("first_line")
    for rows in batches.values_list("rows", flat=True).iterator(chunk_size=20):
        for line, kind, ref in rows:
            yield line, reason(kind, ref), {}


def _file_rows(job: ImportJob) -> Generator[tuple[int, dict[str, str]], None, None]:
    """The job file's data rows (line number, header → cell); none if the file is gone or cannot be read."""
    try:
        with job.file.open("rb") as stored, _stored_list(job, _raw_file(stored)) as listed:
            rows = listed.data_rows()
            try:
                for line, cells in rows:
                    yield line, raw_row(listed.headers, cells)
            finally:
                rows.close()
    except (OSError, ValueError, reading.ImportFileError):
        return


def _enqueue(job_id: int) -> None:
    from leads.tasks.imports import import_run_task

    import_run_task.delay(job_id)


# --- The worker ---------------------------------------------------------------------------------


class _Superseded(Exception):
    """Another worker advanced or finished this job; this one stops without touching it."""


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass
class _Match:
    """An existing lead a row matched: its values (read under a row lock) and what the import changes on it."""

    lead: dict[str, Any]  # MATCH_FIELDS → value
    previous: dict[str, Any] = field(default_factory=dict)
    imported: dict[str, Any] = field(default_factory=dict)
    attributes_added: dict[str, Any] = field(default_factory=dict)
    tags_added: set[int] = field(default_factory=set)
    row_tags: set[str] = field(default_factory=set)
    lines: list[int] = field(default_factory=list)

    @property
    def pk(self) -> int:
        return int(self.lead["id"])


def import_run(*, job_id: int) -> None:
    """Run (or resume) an import job; a no-op for a finished or undone job.

    An unexpected error marks the job failed with the error text and is re-raised; running it
    again resumes after the last committed chunk (the counters say where).
    """
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in (ImportStatus.DONE, ImportStatus.UNDOING, ImportStatus.UNDONE):
            return
        job.status = ImportStatus.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.touched_at = timezone.now()
        job.error = ""
        job.save(update_fields=["status", "started_at", "touched_at", "error"])
    try:
        with fewer_collections():
            _run(job)
    except _Superseded:
        return
    except Exception as exc:
        ImportJob.objects.filter(pk=job_id, status=ImportStatus.RUNNING).update(
            status=ImportStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise


def _chunks(rows: Iterator[tuple[int, list[str]]], size: int) -> Iterator[list[tuple[int, list[str]]]]:
    while chunk := list(islice(rows, size)):
        yield chunk


_END = object()


def _built_chunks(
    rows: Iterator[tuple[int, list[str]]], headers: Sequence[str], mapping: dict[str, str]
) -> Generator[list[Row], None, None]:
    """The file's chunks, read and normalized one chunk ahead in a thread.

    Normalizing is pure Python; writing a chunk is mostly waiting for PostgreSQL, during which the
    thread builds the next chunk, so the two overlap on a second core. At most one finished chunk
    waits. An error in the thread is raised here; closing the generator stops the thread.
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()
    language = translation.get_language()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with translation.override(language):  # row errors in the job's language, as before
                build = RowBuilder(headers, mapping)
                for chunk in _chunks(rows, CHUNK_ROWS):
                    if not put([build(line, cells) for line, cells in chunk]):
                        return
            put(_END)
        except BaseException as exc:  # re-raised by the consumer
            put(exc)

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _writer_count() -> int:
    """How many connections write chunks at once: one unless this runs outside any transaction on PostgreSQL.

    A second writer needs its own connection, which cannot see an enclosing transaction's rows (a test
    run inside one) and which SQLite would serialize anyway.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, int(settings.LEADCRM_IMPORT_WRITERS))


def _stored_list(job: ImportJob, raw: IO[bytes]) -> reading.StoredList:
    """The job's file as inspected at upload (its kind by the stored name, its encoding and delimiter).

    The worker and errors.csv both read the file this way, so a line number means the same row to both.
    """
    kind = "xlsx" if job.file.name.lower().endswith(reading.XLSX_EXTENSIONS) else "csv"
    return reading.StoredList(raw, reading.FileInfo(kind=kind, encoding=job.encoding, delimiter=job.delimiter))


def _run(job: ImportJob) -> None:
    with job.file.open("rb") as stored, _stored_list(job, _raw_file(stored)) as listed:
        if job.total == 0:
            job.total = listed.count()
            ImportJob.objects.filter(pk=job.pk).update(total=job.total)
        rows = listed.data_rows()
        offset = job.processed
        tag_ids = _tag_ids(job.tags)
        chunks = _built_chunks(islice(rows, offset, None), listed.headers, job.mapping)
        try:
            writers = _writer_count()
            if writers == 1:
                for chunk in chunks:
                    _import_chunk(job, chunk, offset=offset, job_tag_ids=tag_ids)
                    offset += len(chunk)
            else:
                _Pipeline(job, chunks, offset=offset, job_tag_ids=tag_ids).run(writers)
        finally:
            chunks.close()  # stops the reader thread …
            rows.close()  # … before the file closes under it
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportStatus.RUNNING:
            raise _Superseded
        locked.status = ImportStatus.DONE
        locked.total = locked.processed
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "total", "finished_at"])
        # Every lead the import created or changed was marked dirty by its chunk's own write (a second
        # UPDATE of each lead here cost as much as the import itself); scoring and assignment run for
        # them all, set-based, once the job is done.
        if locked.created or locked.updated:
            pipeline_enqueue_on_commit()


class _Abandoned(Exception):
    """An earlier chunk failed, so this one rolls back: the job's rows stay committed in file order."""


class _Turns:
    """The order chunk transactions keep when several run at once; a chunk's turn is its index.

    Chunk *k* takes its identity locks (and, updating, its matched leads' row locks) only after chunk
    *k − 1* holds all of its own, and commits only after chunk *k − 1* has committed. So an earlier
    chunk never waits for a later one (no deadlock that PostgreSQL could not see), and the job's
    ``processed`` counter only ever moves past committed rows. A person both chunks share is taken
    from chunk *k − 1*'s findings in skip mode (``locks_held``); otherwise chunk *k* waits on the lock
    and then finds chunk *k − 1*'s lead in the database. Everything between (the COPYs, the deferred
    foreign-key checks of the chunk before) runs side by side.
    """

    def __init__(self, first: int) -> None:
        self._changed = threading.Condition()
        self._locked = first - 1  # last chunk holding its locks
        self._committed = first - 1  # last chunk committed
        self._failed_from: int | None = None  # chunks from this index on must not commit
        self._resolved: dict[int, _Resolved] = {}  # what the chunk in flight found for the people it locked

    def failed(self, index: int) -> None:
        with self._changed:
            if self._failed_from is None or index < self._failed_from:
                self._failed_from = index
            self._changed.notify_all()

    def stopped(self, index: int) -> bool:
        with self._changed:
            return self._failed_from is not None and self._failed_from <= index

    def _wait(self, index: int, done: str) -> None:
        with self._changed:
            while getattr(self, done) < index - 1:
                if self._failed_from is not None and self._failed_from < index:
                    raise _Abandoned
                self._changed.wait()
            if self._failed_from is not None and self._failed_from < index:
                raise _Abandoned

    def _mark(self, index: int, done: str) -> None:
        with self._changed:
            setattr(self, done, max(getattr(self, done), index))
            self._changed.notify_all()

    def before_locks(self, index: int) -> _Resolved | None:
        """Wait for the chunk before to hold its locks; what it found for them (see ``locks_held``)."""
        self._wait(index, "_locked")
        with self._changed:
            self._resolved.pop(index - 2, None)
            return self._resolved.get(index - 1)

    def locks_held(self, index: int, resolved: _Resolved | None) -> None:
        """Chunk ``index`` holds its locks; ``resolved`` says which lead each identity it locked is.

        The next chunk takes those people from here instead of locking them again, which would make
        it wait for this whole chunk to commit (adjacent chunks of a list share a few people as a rule).
        """
        if resolved is not None:
            with self._changed:
                self._resolved[index] = resolved
        self._mark(index, "_locked")

    def before_commit(self, index: int) -> None:
        self._wait(index, "_committed")

    def committed(self, index: int) -> None:
        self._mark(index, "_committed")


@dataclass(frozen=True, slots=True)
class _Resolved:
    """What a chunk in flight resolved for the people it locked, for the chunk after it (skip mode).

    ``found_*`` maps an e-mail or phone to the database's lead (id, the import that created it);
    ``new_*`` holds the keys of the leads the chunk is creating (id 0: a skip reason names no id for
    a row of the same file). These are the chunk's own dicts, handed over as they are: the next chunk
    asks only about the few people both share, with set intersections.
    """

    found_emails: Mapping[str, tuple[int, int | None]]
    found_phones: Mapping[str, tuple[int, int | None]]
    new_emails: Mapping[str, Any]
    new_phones: Mapping[str, Any]
    job_id: int

    def emails_among(self, emails: set[str]) -> dict[str, tuple[int, int | None]]:
        return self._among(emails, self.found_emails, self.new_emails)

    def phones_among(self, phones: set[str]) -> dict[str, tuple[int, int | None]]:
        return self._among(phones, self.found_phones, self.new_phones)

    def _among(
        self, wanted: set[str], found: Mapping[str, tuple[int, int | None]], new: Mapping[str, Any]
    ) -> dict[str, tuple[int, int | None]]:
        taken = {value: found[value] for value in wanted & found.keys()}
        taken.update(dict.fromkeys(wanted & new.keys(), (0, self.job_id)))
        return taken


@dataclass
class _Turn:
    """One chunk's place in the order (``None`` where chunks run one after another)."""

    turns: _Turns
    index: int


class _Pipeline:
    """Chunks written by several connections at once: this thread and ``writers - 1`` more.

    Each writer takes the next chunk in file order, so at most ``writers`` chunk transactions are
    open; ``_Turns`` keeps their locks and commits in file order. The first failure (by chunk, not
    by time) is raised once every writer has stopped; the chunks before it are committed, the ones
    after it rolled back, and the job's counters say where a rerun resumes.
    """

    def __init__(self, job: ImportJob, chunks: Iterator[list[Row]], *, offset: int, job_tag_ids: dict[str, int]):
        self.job, self.chunks, self.offset, self.job_tag_ids = job, chunks, offset, job_tag_ids
        self.index = 0
        self.turns = _Turns(first=0)
        self.taking = threading.Lock()
        self.errors: list[tuple[int, BaseException]] = []
        self.language = translation.get_language()

    def _next(self) -> tuple[int, int, list[Row]] | None:
        """The next chunk with its index and offset; ``None`` when the file is done or a chunk failed."""
        with self.taking:
            index = self.index
            if self.turns.stopped(index):
                return None
            try:
                chunk = next(self.chunks)
            except StopIteration:
                return None
            except BaseException as exc:  # the reader's error: the chunks before this one still commit
                self.errors.append((index, exc))
                self.turns.failed(index)
                return None
            offset = self.offset
            self.index, self.offset = index + 1, offset + len(chunk)
            return index, offset, chunk

    def _write(self) -> None:
        while (taken := self._next()) is not None:
            index, offset, chunk = taken
            try:
                _import_chunk(
                    self.job, chunk, offset=offset, job_tag_ids=self.job_tag_ids, turn=_Turn(self.turns, index)
                )
            except _Abandoned:
                return
            except BaseException as exc:
                with self.taking:
                    self.errors.append((index, exc))
                self.turns.failed(index)
                return

    def _writer_thread(self) -> None:
        try:
            with translation.override(self.language):
                self._write()
        finally:
            connection.close()  # this thread's own connection

    def run(self, writers: int) -> None:
        threads = [
            threading.Thread(target=self._writer_thread, name=f"import-writer-{n}", daemon=True)
            for n in range(1, writers)
        ]
        for thread in threads:
            thread.start()
        try:
            self._write()
        finally:
            for thread in threads:
                thread.join()
        if self.errors:
            raise min(self.errors, key=lambda error: error[0])[1]


def _tag_ids(names: Iterable[str]) -> dict[str, int]:
    """Tag ids by name, creating the missing tags (a concurrent creator is tolerated)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    existing = dict(Tag.objects.filter(name__in=wanted).values_list("name", "id"))
    missing = [Tag(name=n) for n in wanted if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = dict(Tag.objects.filter(name__in=wanted).values_list("name", "id"))
    return existing


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# A duplicate of a lead this import created from an earlier chunk, by the key it shares.
_FILE_KINDS = {SkipKind.EMAIL.value: SkipKind.FILE_EMAIL.value, SkipKind.PHONE.value: SkipKind.FILE_PHONE.value}


class _SkipReasons:
    """A skipped duplicate's reason in words, from its ``SkipKind`` and reference (translated once, not per row)."""

    def __init__(self) -> None:
        email, phone = _("e-mail"), _("phone")
        existing = _("Duplicate (same %(how)s) of existing lead #%(id)s.")
        earlier = _("Duplicate (same %(how)s) of an earlier row of this file.")
        self.wording: dict[str, tuple[str, str]] = {
            SkipKind.EMAIL: (existing, email),
            SkipKind.PHONE: (existing, phone),
            SkipKind.FILE_EMAIL: (earlier, email),
            SkipKind.FILE_PHONE: (earlier, phone),
            SkipKind.LINE: (_("Duplicate of line %(line)s of this file."), ""),
        }

    def __call__(self, kind: str, ref: int) -> str:
        template, how = self.wording.get(kind, (_("Duplicate."), ""))
        return template % {"how": how, "id": ref, "line": ref}


def _merge_into_existing(match: _Match, row: Row, job: ImportJob, conflicts: list[dict[str, Any]]) -> None:
    """Fill the lead's empty fields from the row; a differing value goes to the timeline (intake rules)."""
    lead = match.lead
    label = f"import:{job.pk}"
    for name, received in row.data.items():
        if name == "source":
            if lead["source"] == SourceChannel.OTHER and received != SourceChannel.OTHER:
                match.previous.setdefault("source", lead["source"])
                lead["source"] = received
                match.imported["source"] = received
            continue
        kept = lead[name]
        if _is_empty(kept):
            match.previous.setdefault(name, kept)
            lead[name] = received
            match.imported[name] = received
        elif kept != received and name not in FIRST_TOUCH:
            conflicts.append(_conflict(match.pk, name, kept, received, label, job, row.line))
    attributes = lead["attributes"]
    for key, received in row.attributes.items():
        if key not in attributes:
            attributes[key] = received
            match.attributes_added[key] = received
        elif attributes[key] != received:
            conflicts.append(_conflict(match.pk, f"attr:{key}", attributes[key], received, label, job, row.line))
    if lead["campaign_id"] is None and job.campaign_id is not None:
        match.previous.setdefault("campaign_id", None)
        lead["campaign_id"] = job.campaign_id
        match.imported["campaign_id"] = job.campaign_id


def _conflict(
    lead_id: int, name: str, kept: Any, received: Any, label: str, job: ImportJob, line: int
) -> dict[str, Any]:
    """A ``field_conflict`` interaction, as plain values for ``_insert``."""
    now = timezone.now()
    return {
        "lead_id": lead_id,
        "type": FIELD_CONFLICT,
        "occurred_at": now,
        "created_at": now,
        "properties": {
            "field": name,
            "kept": kept,
            "received": received,
            "source": label,
            "import_job": job.pk,
            "line": line,
        },
        "created_by_id": job.created_by_id,
        "external_id": None,
    }


def _merge_into_new(first: Row, row: Row) -> None:
    """A later row of the file for the same person fills what the first row left empty."""
    for name, value in row.data.items():
        if _is_empty(first.data.get(name)):
            first.data[name] = value
    for key, value in row.attributes.items():
        first.attributes.setdefault(key, value)
    first.tags = sorted({*first.tags, *row.tags})


def _import_chunk(
    job: ImportJob, rows: list[Row], *, offset: int, job_tag_ids: dict[str, int], turn: _Turn | None = None
) -> None:
    counts = _Counts()
    errors: list[dict[str, Any]] = []
    for row in rows:
        if row.errors:
            counts.failed += 1
            errors.append(_skipped(job, row, " ".join(row.errors)))
    good = [row for row in rows if not row.errors]
    dedupe = job.on_duplicate != OnDuplicate.CREATE
    # Tags the rows name are made before the chunk's transaction (committed at once, harmless if the
    # chunk rolls back): a tag created inside it would make a concurrent chunk naming it wait for this
    # one's commit, which may itself wait for that chunk's turn.
    row_tag_ids = _tag_ids({tag for row in good for tag in row.tags})

    with transaction.atomic():
        # e-mail / phone → (lead id, the import that created it): all the chunk knows, and what its own
        # lookup found (the identities it locked)
        by_email: dict[str, tuple[int, int | None]] = {}
        by_phone: dict[str, tuple[int, int | None]] = {}
        found_emails: dict[str, tuple[int, int | None]] = {}
        found_phones: dict[str, tuple[int, int | None]] = {}
        current: dict[int, dict[str, Any]] = {}
        skip = job.on_duplicate == OnDuplicate.SKIP
        # In skip mode, the people the chunk before (still in flight, holding their locks) has resolved
        # are taken from it: it found them in the database under its locks, or is creating them now,
        # and this chunk cannot commit unless it does. Updating needs the lead's locked row: no shortcut.
        earlier = turn.turns.before_locks(turn.index) if turn is not None else None
        if not skip:
            earlier = None
        if dedupe:
            emails = {row.email for row in good if row.email}
            phones = {row.phone for row in good if row.phone}
            taken_emails = earlier.emails_among(emails) if earlier is not None else {}
            taken_phones = earlier.phones_among(phones) if earlier is not None else {}
            emails.difference_update(taken_emails)
            phones.difference_update(taken_phones)
            # Web-form intake of one of these people waits for this chunk (and this chunk for it).
            _lock_identities(emails, phones)
            # The oldest lead wins (iterated last), as in single-lead intake.
            for lead_id, email, phone, lead_job_id in _existing(emails, phones):
                if email in emails:
                    found_emails[email] = (lead_id, lead_job_id)
                if phone in phones:
                    found_phones[phone] = (lead_id, lead_job_id)
            by_email = {**found_emails, **taken_emails} if taken_emails else found_emails
            by_phone = {**found_phones, **taken_phones} if taken_phones else found_phones
            if job.on_duplicate == OnDuplicate.UPDATE and (by_email or by_phone):
                current = _locked_values({v[0] for v in by_email.values()} | {v[0] for v in by_phone.values()})
        if turn is not None and not skip:
            turn.turns.locks_held(turn.index, None)
        skips: list[list[Any]] = []  # [line, SkipKind, ref] per skipped duplicate (``ImportSkipBatch``)

        new_rows: list[Row] = []
        new_by_email: dict[str, Row] = {}
        new_by_phone: dict[str, Row] = {}
        matches: dict[int, _Match] = {}
        conflicts: list[dict[str, Any]] = []
        job_id = job.pk
        for row in good:
            email, phone = row.email, row.phone
            if dedupe:
                existing, key = None, ""
                if email and email in by_email:
                    existing, key = by_email[email], "email"
                elif phone and phone in by_phone:
                    existing, key = by_phone[phone], "phone"
                if existing is not None:
                    match_id, match_job_id = existing
                    if skip:
                        counts.skipped += 1
                        kind = key if match_job_id != job_id else _FILE_KINDS[key]
                        if row.has_extra_cells:
                            errors.append(_duplicate(row, kind, match_id))
                        else:
                            skips.append([row.line, kind, match_id])
                    else:
                        match = matches.setdefault(match_id, _Match(lead=current[match_id]))
                        _merge_into_existing(match, row, job, conflicts)
                        match.lines.append(row.line)
                        match.row_tags.update(row.tags)
                        counts.updated += 1
                    continue
                first = (new_by_email.get(email) if email else None) or (new_by_phone.get(phone) if phone else None)
                if first is not None:
                    if skip:
                        counts.skipped += 1
                        if row.has_extra_cells:
                            errors.append(_duplicate(row, SkipKind.LINE, first.line))
                        else:
                            skips.append([row.line, SkipKind.LINE.value, first.line])
                    else:
                        _merge_into_new(first, row)
                        counts.updated += 1
                    continue
            new_rows.append(row)
            if email:
                new_by_email.setdefault(email, row)
            if phone:
                new_by_phone.setdefault(phone, row)

        if turn is not None and skip:
            # What this chunk found for the people it locked: the database's leads, and its new ones.
            turn.turns.locks_held(
                turn.index, _Resolved(found_emails, found_phones, new_by_email, new_by_phone, job_id=job.pk)
            )

        now = timezone.now()
        _create_leads(job, new_rows, now, job_tag_ids, row_tag_ids)
        _update_leads(job, list(matches.values()), conflicts, now, job_tag_ids, row_tag_ids)
        counts.created = len(new_rows)
        _insert(ImportRowError, errors, common={"job_id": job.pk})
        if skips:
            _insert(ImportSkipBatch, [{"first_line": skips[0][0], "rows": skips}], common={"job_id": job.pk})

        # The job's row is written (and so locked) last, just before the commit, so that chunks in flight do
        # their work side by side and only queue here. ``processed`` must still be where this chunk starts: a second
        # worker running the same job (a redelivered task) finds it moved and rolls back.
        if turn is not None:
            # The remaining deferred foreign-key checks (the per-row keys are set-checked at each COPY since
            # leads/0013; ~45 ms a chunk before that) run now, beside the other writer's work,
            # rather than in COMMIT, which waits for the chunk before to commit and so runs alone.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            turn.turns.before_commit(turn.index)
        # One conditional UPDATE: it waits for a concurrent writer of the row and then re-reads it, so a
        # count moved by anyone else since this chunk began leaves it no row to update.
        moved = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING, processed=offset).update(
            touched_at=now,
            processed=F("processed") + len(rows),
            created=F("created") + counts.created,
            updated=F("updated") + counts.updated,
            skipped=F("skipped") + counts.skipped,
            failed=F("failed") + counts.failed,
        )
        if not moved:
            raise _Superseded
    if turn is not None:
        turn.turns.committed(turn.index)


def _lines(values: Iterable[str]) -> str:
    """Strings as one newline-separated parameter, split by ``string_to_array`` in SQL.

    Normalized e-mails and phones never contain a newline; one text parameter is quoted in C, while
    a list parameter is quoted element by element in Python (a third of the chunk's own Python time).
    """
    return "\n".join(values)


def _lock_identities(emails: Iterable[str], phones: Iterable[str]) -> None:
    """Take the chunk's intake advisory locks (``intake._identity_lock_sql``'s keys) in one statement, in sorted order.

    Sorted like intake sorts its two keys, so an import chunk and a form submission for the same
    person cannot deadlock; held until the chunk commits (at most 2 × CHUNK_ROWS locks).
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted([f"email:{e}" for e in emails] + [f"phone:{p}" for p in phones])
    if keys:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM unnest(string_to_array(%s, E'\\n')) AS k",
                [_lines(keys)],
            )


def _existing(emails: set[str], phones: set[str]) -> list[tuple[int, str, str, int | None]]:
    """(id, email, phone, import job) of the unmerged leads with one of these e-mails or phones, newest first."""
    if not emails and not phones:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_existing_sql(), [_lines(emails), _lines(phones)])
            return cursor.fetchall()
    candidates = Lead.objects.filter(merged_into__isnull=True).filter(Q(email__in=emails) | Q(phone__in=phones))
    return list(candidates.order_by("-created_at", "-id").values_list("id", "email", "phone", "import_job_id"))


@functools.cache
def _existing_sql() -> str:
    """The chunk's duplicate lookup on PostgreSQL: one index probe per e-mail and per phone.

    The keys come as two newline-joined texts (a short statement to send and parse, see ``_lines``).
    Written as ``email = ANY(…) OR phone = ANY(…)`` the planner saw a thousand keys, estimated a
    percent of the table and chose a sequential (at times parallel) scan: 35-55 ms a chunk on 100,000
    leads, against ~10 ms for the probes, and worse as the table grows. Each key's probe is a LATERAL
    subquery that cannot be flattened (``OFFSET 0``): an equality lookup of one value, which the planner
    serves from the e-mail or phone index whatever the table's size. A lead found by both its e-mail and
    its phone comes twice, next to itself (same sort key), which the caller does not mind.
    """
    table = connection.ops.quote_name(Lead._meta.db_table)

    def probe(column: str) -> str:
        return (
            f"SELECT found.* FROM unnest(string_to_array(%s, E'\\n')) AS k(v), LATERAL"
            f" (SELECT id, email, phone, import_job_id, created_at FROM {table}"
            f" WHERE {column} = k.v AND merged_into_id IS NULL OFFSET 0) AS found"
        )

    # Newest first, so that the oldest lead, iterated last, wins (as in single-lead intake). The creation
    # time only sorts: it is not sent back (a timestamp per row is the costliest value to read in Python).
    return (
        f"SELECT id, email, phone, import_job_id FROM ({probe('email')} UNION ALL {probe('phone')}) AS hits"
        " ORDER BY created_at DESC, id DESC"
    )


def _locked_values(ids: set[int]) -> dict[int, dict[str, Any]]:
    """What the merge needs of these leads, as plain values, row-locked in id order until the chunk commits.

    Locked before they are read, so a concurrent edit is not overwritten with a stale value; id order
    (as ``leads_mark_dirty`` locks) so two writers cannot deadlock.
    """
    locked = Lead.objects.select_for_update(no_key=connection.vendor == "postgresql")
    return {row["id"]: row for row in locked.filter(pk__in=sorted(ids)).order_by("pk").values(*MATCH_FIELDS)}


def _skipped(job: ImportJob, row: Row, reason: str) -> dict[str, Any]:
    """An ImportRowError row for a rejected row, as plain values for ``_insert``: its cells are kept."""
    return {"line_number": row.line, "reason": reason, "row": row.raw}


def _duplicate(row: Row, kind: str, ref: int) -> dict[str, Any]:
    """An ImportRowError row for a skipped duplicate with cells beyond the file's header, which it keeps.

    errors.csv needs those cells' columns before it streams (``import_errors_csv``); every other
    skipped duplicate goes into the chunk's ``ImportSkipBatch``.
    """
    return {"line_number": row.line, "reason": _SkipReasons()(kind, ref), "row": row.raw}


# One encoder for every JSON value the import writes (``json.dumps`` with options builds one per call).
_to_json = json.JSONEncoder(ensure_ascii=False).encode


def _insert(
    model: type[Model],
    rows: list[dict[str, Any]],
    *,
    common: Mapping[str, Any] | None = None,
    with_ids: bool = False,
    json_text: Collection[str] = (),
) -> list[int]:
    """Insert plain rows (attribute name → value); on PostgreSQL with COPY, the fastest way in.

    ``bulk_create`` builds a model instance per row and binds every value in Python, which costs more
    than the database's own work at 100,000 rows. COPY streams the rows; ids, when the caller needs
    them, are drawn from the table's sequence first. ``common`` holds the values every row shares;
    columns given neither way get the model field's default. ``json_text`` names JSON columns whose row
    values are JSON text already, written as they are. Returns the new ids when ``with_ids`` (in row
    order), else an empty list.
    """
    if not rows:
        return []
    common = common or {}
    fields = [f for f in model._meta.concrete_fields if not f.generated and (with_ids or not f.primary_key)]
    if connection.vendor != "postgresql":
        plain = [{k: json.loads(v) if k in json_text else v for k, v in row.items()} for row in rows]
        objs = model._default_manager.bulk_create([model(**{**common, **row}) for row in plain], batch_size=1000)
        return [obj.pk for obj in objs] if with_ids else []
    ids: list[int] = []
    pk = model._meta.pk
    assert pk is not None
    with connection.cursor() as cursor:
        if with_ids:
            cursor.execute(
                "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                [_sequence(model._meta.db_table, pk.column), len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
        columns, text = _copy_rows([f for f in fields if not f.primary_key], rows, common, ids, json_text)
        if with_ids:
            columns = [pk, *columns]
        names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
        table = connection.ops.quote_name(model._meta.db_table)
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            copy.write(text)
    return ids


@functools.cache
def _sequence(table: str, column: str) -> str:
    """The sequence behind a table's id column, looked up once per process.

    ``nextval(pg_get_serial_sequence(…))`` per drawn id looked the sequence up in the catalogue for
    every row: ~5 µs a row against ~0.5 µs for ``nextval`` of the sequence itself.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
        return cast("str", cursor.fetchone()[0])


def _copy_rows(
    fields: list[ModelField[Any, Any]],
    rows: list[dict[str, Any]],
    common: Mapping[str, Any],
    ids: Sequence[int] = (),
    json_text: Collection[str] = (),
) -> tuple[list[ModelField[Any, Any]], str]:
    """The rows in COPY's text format, and the columns in the order the text gives them.

    Writing the text ourselves costs a third of psycopg's ``write_row``, which adapts every value of
    every row by its type. The text is built column by column (``_column_text``): most columns are
    plain text that needs no escaping, checked for the whole column at once. The columns some row
    names come first; the ones no row names (``common`` values and defaults) are one piece of text
    shared by every line. A lead row names ~10 of its ~40 columns. ``ids``, when given, lead each line;
    ``json_text`` as for ``_insert``.
    """
    named = set().union(*rows)
    if unknown := named - {f.attname for f in fields}:
        raise ValueError(f"no such columns: {', '.join(sorted(unknown))}")
    own = [f for f in fields if f.attname in named]
    shared = [f for f in fields if f.attname not in named]
    shared_text = "\t".join(_to_text(f)(_given(f, common)) for f in shared)
    if not own and not ids:  # every line the same
        return shared, (shared_text + "\n") * len(rows)
    columns: list[Iterable[str]] = [map(str, ids)] if ids else []
    columns += [_column_text(f, rows, _given(f, common), encoded=f.attname in json_text) for f in own]
    if shared:
        columns.append(repeat(shared_text, len(rows)))
    return [*own, *shared], "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def _column_text(
    field: ModelField[Any, Any], rows: list[dict[str, Any]], default: Any, *, encoded: bool = False
) -> list[str]:
    """One column of the rows in COPY's text format (``default`` where a row does not name it).

    ``encoded``: a JSON column whose values are JSON text already.

    Text that has no backslash, tab or line break is written as it is, and whether a column has any is
    one scan of the column joined (in C), not a check per value; other values go through ``_copy_text``.
    """
    name, to_text = field.attname, _to_text(field)
    if to_text is _json_copy_text and not encoded:
        values: list[Any] = [_json_text(row.get(name, default)) for row in rows]
    elif encoded:
        default_text = _json_text(default)  # the rows' values are JSON text already; the default is not
        values = [row.get(name, default_text) for row in rows]
    else:
        values = [row.get(name, default) for row in rows]
    try:
        joined = "\x00".join(values)  # a TypeError unless every value is text
    except TypeError:
        return [_copy_text(value) for value in values]
    if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
        return [_copy_text(value) for value in values]
    return values


def _to_text(field: ModelField[Any, Any]) -> Callable[[Any], str]:
    """The converter of a column's values to COPY text."""
    return _json_copy_text if field.get_internal_type() == "JSONField" else _copy_text


def _given(field: ModelField[Any, Any], common: Mapping[str, Any]) -> Any:
    """A column's value where a row does not name it: the shared value, else the field's default."""
    return common[field.attname] if field.attname in common else field.get_default()


def _copy_text(value: Any) -> str:
    """A value in COPY's text format: NULL as ``\\N``; backslashes, tabs and line breaks in text escaped."""
    kind = type(value)
    if kind is str:
        text = value
    elif kind is int:
        return str(value)
    elif value is None:
        return "\\N"
    elif isinstance(value, bool):
        return "t" if value else "f"
    elif isinstance(value, int | float):
        return str(value)
    elif isinstance(value, str):
        text = str.__str__(value)  # the characters themselves, whatever a subclass's __str__ says
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, Decimal | UUID):
        text = str(value)
    else:
        raise TypeError(f"no COPY text for {type(value).__name__}")
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _json_text(value: Any) -> str:
    if not value and type(value) is dict:
        return "{}"  # most rows' custom attributes
    return _to_json(value)


def _json_copy_text(value: Any) -> str:
    return _copy_text(_json_text(value))


def _update(model: type[Model], objs: Sequence[Model], field_names: list[str]) -> None:
    """Write ``field_names`` of ``objs`` back; on PostgreSQL COPY into a scratch table and one UPDATE … FROM.

    ``bulk_update`` sends a CASE WHEN per field per batch, whose cost grows with the batch squared.
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, field_names, batch_size=500)
        return
    pk = model._meta.pk
    assert pk is not None
    fields = [cast("ModelField[Any, Any]", model._meta.get_field(name)) for name in field_names]
    is_json = [f.get_internal_type() == "JSONField" for f in fields]
    qn = connection.ops.quote_name
    key = qn(str(pk.column))
    columns = [qn(str(f.column)) for f in fields]
    table, scratch = qn(model._meta.db_table), qn(f"import_update_{model._meta.model_name}")
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {scratch} ON COMMIT DROP AS SELECT {key}, {', '.join(columns)} FROM {table} WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY {scratch} ({key}, {', '.join(columns)}) FROM STDIN") as copy:
            for obj in objs:
                values: list[Any] = [obj.pk]
                for f, json_field in zip(fields, is_json, strict=True):
                    value = getattr(obj, f.attname)
                    values.append(json.dumps(value, ensure_ascii=False) if json_field else value)
                copy.write_row(values)
        assignments = ", ".join(f"{c} = u.{c}" for c in columns)
        cursor.execute(f"UPDATE {table} AS t SET {assignments} FROM {scratch} AS u WHERE t.{key} = u.{key}")
        cursor.execute(f"DROP TABLE {scratch}")


def _create_leads(
    job: ImportJob, rows: list[Row], now: Any, job_tag_ids: dict[str, int], row_tags: dict[str, int]
) -> None:
    if not rows:
        return
    base = {
        "source": job.source,
        "campaign_id": job.campaign_id,
        "stage": Stage.NEW,
        "import_job_id": job.pk,
        "created_by_id": job.created_by_id,
        "created_at": now,
        "last_activity_at": now,
        "updated_at": now,
        "interests": [],
        # Dirty from birth: the pipeline scores them after the job, without a second write of each lead.
        "dirty_since": now,
    }
    ids = _insert(Lead, [{**row.data, "attributes": row.attributes} for row in rows], common=base, with_ids=True)
    _insert(
        LeadStageChange,
        [{"lead_id": lead_id} for lead_id in ids],
        common={"from_stage": "", "to_stage": Stage.NEW, "changed_by_id": job.created_by_id, "changed_at": now,
                "reason": ""},
    )  # fmt: skip
    # One timeline event per lead: where it came from (file, line) is what a rep asks first. Its JSON is
    # the chunk's but for the line number, so it is encoded once: {"import_job": …, "file": …, "line": <n>}.
    head = _to_json({"import_job": job.pk, "file": job.original_filename})[:-1] + ', "line": '
    _insert(
        Interaction,
        [{"lead_id": lead_id, "properties": f"{head}{row.line}}}"} for lead_id, row in zip(ids, rows, strict=True)],
        common=_event_values(job, now),
        json_text={"properties"},
    )
    _insert(
        Lead.tags.through,
        [
            {"lead_id": lead_id, "tag_id": tag_id}
            for lead_id, row in zip(ids, rows, strict=True)
            for tag_id in {*job_tag_ids.values(), *(row_tags[t] for t in row.tags)}
        ],
    )


def _event_values(job: ImportJob, now: Any) -> dict[str, Any]:
    """The columns every ``import`` interaction of a chunk shares."""
    return {"type": IMPORT_EVENT, "occurred_at": now, "created_at": now, "created_by_id": job.created_by_id}


def _update_leads(
    job: ImportJob,
    matches: list[_Match],
    conflicts: list[dict[str, Any]],
    now: Any,
    job_tag_ids: dict[str, int],
    row_tags: dict[str, int],
) -> None:
    if not matches:
        return
    by_id = {m.pk: m for m in matches}
    wanted = [
        (m.pk, tag_id)
        for m in matches
        for tag_id in sorted({*job_tag_ids.values(), *(row_tags[t] for t in m.row_tags)})
    ]
    for lead_id, tag_id in _add_tags(wanted):
        by_id[lead_id].tags_added.add(tag_id)
    _write_matches(matches, now)
    _insert(
        Interaction,
        [
            {
                "lead_id": m.pk,
                "properties": {
                    "import_job": job.pk,
                    "file": job.original_filename,
                    "line": m.lines[0],
                    "updated_fields": sorted(m.imported) + sorted(f"attr:{k}" for k in m.attributes_added),
                },
            }
            for m in matches
        ]
        + conflicts,
        common=_event_values(job, now),
    )
    # A lead this very import created (an earlier chunk) is deleted by undo anyway: no restore record.
    _insert(
        ImportUpdate,
        [
            {
                "job_id": job.pk,
                "lead_id": m.pk,
                "previous": {
                    "fields": m.previous,
                    "imported": m.imported,
                    "attributes_added": m.attributes_added,
                    "tags_added": sorted(m.tags_added),
                },
            }
            for m in matches
            if m.lead["import_job_id"] != job.pk
        ],
    )


def _add_tags(links: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Link (lead, tag) pairs; returns the pairs that were not linked yet (what undo removes)."""
    if not links:
        return []
    through = Lead.tags.through
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {through._meta.db_table} (lead_id, tag_id)"
                " SELECT * FROM unnest(%s::bigint[], %s::bigint[]) ON CONFLICT (lead_id, tag_id) DO NOTHING"
                " RETURNING lead_id, tag_id",
                [[lead for lead, _tag in links], [tag for _lead, tag in links]],
            )
            return cast("list[tuple[int, int]]", cursor.fetchall())
    linked = set(through.objects.filter(lead_id__in={lead for lead, _tag in links}).values_list("lead_id", "tag_id"))
    added = [link for link in links if link not in linked]
    through.objects.bulk_create([through(lead_id=lead, tag_id=tag) for lead, tag in added], ignore_conflicts=True)
    return added


# Array types for the columns an import fills (everything else it fills is text).
_ARRAY_TYPES = {"campaign_id": "bigint[]"}


def _write_matches(matches: list[_Match], now: Any) -> None:
    """One UPDATE for the chunk's matched leads, touching only the columns the import fills in.

    Each lead is written once: the filled values, its last activity (the import is on its timeline)
    and the pipeline's dirty flag together. ``updated_at`` moves only on a lead whose data changed.
    """
    names = sorted({name for m in matches for name in m.imported})
    with_attributes = any(m.attributes_added for m in matches)
    if connection.vendor != "postgresql":
        for m in matches:
            values: dict[str, Any] = {name: m.imported[name] for name in m.imported}
            if m.attributes_added:
                values["attributes"] = m.lead["attributes"]
            if values:
                values["updated_at"] = now
            Lead.objects.filter(pk=m.pk).update(
                **values, last_activity_at=now, dirty_since=Coalesce("dirty_since", Value(now))
            )
        return
    qn = connection.ops.quote_name
    columns = {name: qn(str(cast("ModelField[Any, Any]", Lead._meta.get_field(name)).column)) for name in names}
    arrays: list[Any] = [[m.pk for m in matches]]
    selects = ["unnest(%s::bigint[]) AS id"]
    sets = []
    for index, name in enumerate(names):
        arrays.append([m.imported.get(name) for m in matches])
        selects.append(f"unnest(%s::{_ARRAY_TYPES.get(name, 'text[]')}) AS v{index}")
        sets.append(f"{columns[name]} = COALESCE(v.v{index}, t.{columns[name]})")
    if with_attributes:
        arrays.append([_to_json(m.lead["attributes"]) if m.attributes_added else None for m in matches])
        selects.append("unnest(%s::text[])::jsonb AS attributes")
        sets.append("attributes = COALESCE(v.attributes, t.attributes)")
    arrays.append([bool(m.imported or m.attributes_added) for m in matches])
    selects.append("unnest(%s::boolean[]) AS changed")
    sets += [
        "updated_at = CASE WHEN v.changed THEN %s ELSE t.updated_at END",
        "last_activity_at = GREATEST(t.last_activity_at, %s)",
        "dirty_since = COALESCE(t.dirty_since, %s)",
    ]
    table = qn(Lead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET {', '.join(sets)} FROM (SELECT {', '.join(selects)}) AS v WHERE t.id = v.id",
            [now, now, now, *arrays],  # the SET clause's parameters come first in the statement
        )


# --- Undo ---------------------------------------------------------------------------------------


def _delete_created_leads(job: ImportJob) -> None:
    """Delete the leads the import created (``import_job`` still set) and every row that hangs off them.

    One statement per related table, its condition the leads' own query, instead of Django's collector
    over batches of leads: the collector fetches every lead and builds each relation's query with the
    batch's ids (an IN list of thousands for ~17 relations), which was most of an undo's time (about 20 s
    per 50,000 leads). The collector is still used where it is needed: a related model with deletable
    relations of its own, a delete signal on leads, an ``on_delete`` other than CASCADE and SET_NULL.
    """
    doomed = Lead.objects.filter(import_job=job)
    relations = [cast("ForeignObjectRel", rel) for rel in get_candidate_relations_to_delete(Lead._meta)]
    if (
        signals.pre_delete.has_listeners(Lead)
        or signals.post_delete.has_listeners(Lead)
        or any(rel.on_delete not in (CASCADE, SET_NULL) for rel in relations)
    ):
        doomed.delete()
        return
    for rel in relations:
        model = cast("type[Model]", rel.related_model)
        related = model._base_manager.filter(**{f"{rel.field.name}__in": doomed.values("pk")})
        if rel.on_delete is SET_NULL:
            related.update(**{rel.field.name: None})
        else:
            related.delete()  # one DELETE when nothing hangs off these rows (else Django's collector)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {connection.ops.quote_name(Lead._meta.db_table)} WHERE import_job_id = %s", [job.pk]
        )


def _undo_refused() -> ValidationError:
    return ValidationError({"status": [_("Only a finished or failed import can be undone.")]})


@transaction.atomic
def import_undo_start(*, job: ImportJob, by: User | None) -> ImportJob:
    """Mark a finished or failed import ``undoing`` and have a worker undo it (``import_undo``).

    Undoing a big list deletes hundreds of thousands of rows (4-10 s per 50,000 created leads on the
    benchmark machine, docs/benchmarks.md): longer than a web request should take, so it runs in the
    background like the import itself and the job's page follows its status.
    """
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in (ImportStatus.DONE, ImportStatus.FAILED):
        raise _undo_refused()
    job.undo_from, job.status = job.status, ImportStatus.UNDOING
    job.error = ""
    job.touched_at = timezone.now()
    job.save(update_fields=["status", "undo_from", "error", "touched_at"])
    job_id, language = job.pk, translation.get_language()
    transaction.on_commit(lambda: _enqueue_undo(job_id, language))
    return job


def _enqueue_undo(job_id: int, language: str | None = None) -> None:
    """Send the undo to a worker; its messages (leads kept, the error) in ``language``, the requester's."""
    from leads.tasks.imports import import_undo_task

    import_undo_task.delay(job_id, language)


def import_sweep(*, stale_after_s: float | None = None) -> int:
    """Send again the jobs a lost message left waiting, running or undoing; return how many were sent.

    A job nobody has moved for ``LEADCRM_IMPORT_STALE_S`` (a Redis restart lost its message, or its
    worker died and the message is not coming back) goes to a worker again. A duplicate is harmless:
    a second import run stops at its first chunk because the counters moved under it, and a second
    undo waits for the job's row lock and then finds it undone. Run by beat (``import_sweep_task``).
    """
    after = settings.LEADCRM_IMPORT_STALE_S if stale_after_s is None else stale_after_s
    stale = ImportJob.objects.filter(
        status__in=[ImportStatus.PENDING, ImportStatus.RUNNING, ImportStatus.UNDOING],
        touched_at__lt=timezone.now() - timedelta(seconds=after),
    )
    sent = 0
    for job_id, status in stale.values_list("pk", "status"):
        # Touched first: of two sweeps at once only one sends it, and the next sweep waits again.
        if stale.filter(pk=job_id, status=status).update(touched_at=timezone.now()):
            (_enqueue_undo if status == ImportStatus.UNDOING else _enqueue)(job_id)
            sent += 1
    return sent


def import_undo_failed(*, job_id: int, error: BaseException) -> None:
    """An undo that raised: everything it did rolled back, so the job goes back to the status it had
    (done or failed), says why, and may be undone again."""
    job = ImportJob.objects.filter(pk=job_id, status=ImportStatus.UNDOING).first()
    if job is None:
        return
    job.status = job.undo_from or ImportStatus.FAILED
    job.error = (_("Undo failed: %(error)s") % {"error": f"{type(error).__name__}: {error}"})[:2000]
    ImportJob.objects.filter(pk=job_id, status=ImportStatus.UNDOING).update(status=job.status, error=job.error)


@transaction.atomic
def import_undo(*, job: ImportJob, by: User | None, started: bool = False) -> ImportJob:
    """Delete the leads the import created and put back what it changed on existing leads.

    A created lead someone has since worked on (a logged call, a note, a task, converted) is kept,
    detached from the import, and counted in the job's message: undo never destroys a person's work.
    A value the import filled is restored only if nobody changed it since. One transaction: a failure
    leaves the import as it was. The worker runs it with ``started`` for ``import_undo_start``: then a
    job no longer ``undoing`` under its row lock (another run finished or failed it) is left alone.
    """
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if started and job.status != ImportStatus.UNDOING:
        return job
    if job.status not in (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.UNDOING):
        raise _undo_refused()
    created = Lead.objects.filter(import_job=job)
    # Anything that happened to the lead after the import, by a person or by the lead themselves (a
    # form submitted, a visitor linked, a merge), makes it worth keeping.
    worked = Interaction.objects.filter(lead__import_job=job).exclude(type__in=SYSTEM_EVENTS).values("lead_id")
    with_tasks = Task.objects.filter(lead__import_job=job).values("lead_id")
    submitted = FormSubmission.objects.filter(lead__import_job=job).values("lead_id")
    visited = Visitor.objects.filter(lead__import_job=job).values("lead_id")
    merged = LeadMerge.objects.filter(Q(primary__import_job=job) | Q(merged__import_job=job))
    keep = created.filter(
        Q(pk__in=worked)
        | Q(pk__in=with_tasks)
        | Q(pk__in=submitted)
        | Q(pk__in=visited)
        | Q(pk__in=merged.values("primary_id"))
        | Q(pk__in=merged.values("merged_id"))
        | Q(stage=Stage.CONVERTED)
    )
    kept = keep.update(import_job=None)
    _delete_created_leads(job)

    restored: list[int] = []
    updates = ImportUpdate.objects.filter(job=job).select_related("lead").order_by("id")
    through = Lead.tags.through
    for start in range(0, updates.count(), CHUNK_ROWS):
        batch = list(updates[start : start + CHUNK_ROWS])
        changed_leads: list[Lead] = []
        changed_fields: set[str] = set()
        tag_links: dict[int, list[int]] = {}
        for update in batch:
            lead, previous = update.lead, update.previous
            changed = []
            for name, old in previous.get("fields", {}).items():
                if getattr(lead, name) == previous.get("imported", {}).get(name):
                    setattr(lead, name, old)
                    changed.append(name)
            for key, value in previous.get("attributes_added", {}).items():
                if lead.attributes.get(key) == value:
                    del lead.attributes[key]
                    changed.append("attributes")
            if changed:
                changed_leads.append(lead)
                changed_fields.update(changed)
            for tag_id in previous.get("tags_added", []):
                tag_links.setdefault(tag_id, []).append(lead.pk)
            restored.append(lead.pk)
        now = timezone.now()
        for lead in changed_leads:
            lead.updated_at = now
        # Set-based: one UPDATE per batch, one DELETE per added tag.
        _update(Lead, changed_leads, [*sorted(changed_fields), "updated_at"])
        for tag_id, lead_ids in tag_links.items():
            through.objects.filter(tag_id=tag_id, lead_id__in=lead_ids).delete()
    # The import's own timeline rows on existing leads go too (created leads took theirs with them).
    # Per batch of lead ids, so PostgreSQL walks the (lead, occurred_at) index instead of the whole table.
    for start in range(0, len(restored), CHUNK_ROWS):
        Interaction.objects.filter(
            lead_id__in=restored[start : start + CHUNK_ROWS], type__in=SYSTEM_EVENTS, properties__import_job=job.pk
        ).delete()
    job.status = ImportStatus.UNDONE
    job.finished_at = timezone.now()
    job.error = (
        _("%(n)s created leads were kept because someone has worked on them since the import.") % {"n": kept}
        if kept
        else ""
    )
    job.save(update_fields=["status", "finished_at", "error"])
    if restored:
        leads_mark_dirty(lead_ids=restored)
    return job
