"""Knowledge bases and their documents: list, create, delete; upload, delete, re-index documents.

Roles: read to list and look, write to change documents, admin to create or delete a knowledge base.
Uploads go through ingest.documents.ingest_upload, the same hardened path the web UI uses.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, HTTPException, UploadFile
from pydantic import BaseModel, Field

from app.api.deps import Caller, Config, State, require
from app.api.metrics import observe_ingest
from core.errors import DocumentNotFound, KnowledgeBaseExists, KnowledgeBaseNotFound
from core.models import Document, IngestResult, KnowledgeBaseInfo, KnowledgeBaseSummary
from ingest.documents import ingest_upload, reindex_document, remove_document
from ingest.kb import (
    create_kb,
    delete_kb,
    kb_document,
    kb_documents,
    kb_info,
    list_kbs,
    validate_name,
)

router = APIRouter(prefix="/v1/knowledge-bases", tags=["knowledge bases"])


def _public(info: KnowledgeBaseInfo) -> KnowledgeBaseSummary:
    """What a client is told of a knowledge base: everything but where it lives on the server."""
    return KnowledgeBaseSummary.model_validate(info.model_dump(exclude={"path"}))


class KnowledgeBaseList(BaseModel):
    data: list[KnowledgeBaseSummary]


class NewKnowledgeBase(BaseModel):
    name: str = Field(..., min_length=1, max_length=64, description="1-64 个字母、数字、汉字、'-'、'_' 或 '.'")


class DocumentList(BaseModel):
    data: list[Document]


class UploadResults(BaseModel):
    data: list[IngestResult]


@router.get("", response_model=KnowledgeBaseList)
def list_knowledge_bases(key: Caller, settings: Config) -> KnowledgeBaseList:
    return KnowledgeBaseList(data=[_public(i) for i in list_kbs(settings) if key is None or key.allows(i.name, "read")])


@router.post("", response_model=KnowledgeBaseSummary, status_code=201)
def create_knowledge_base(body: NewKnowledgeBase, key: Caller,
                          settings: Config) -> KnowledgeBaseSummary:
    require(key, body.name, "admin")
    try:
        return _public(create_kb(validate_name(body.name), settings))
    except KnowledgeBaseExists as exc:
        raise HTTPException(409, str(exc)) from exc


@router.get("/{kb}", response_model=KnowledgeBaseSummary)
def get_knowledge_base(kb: str, key: Caller, settings: Config) -> KnowledgeBaseSummary:
    require(key, kb, "read")
    return _public(kb_info(kb, settings))


@router.delete("/{kb}", status_code=204)
def delete_knowledge_base(kb: str, key: Caller, settings: Config, services: State) -> None:
    require(key, kb, "admin")
    delete_kb(kb, settings, services)


@router.get("/{kb}/documents", response_model=DocumentList)
def list_documents(kb: str, key: Caller, settings: Config) -> DocumentList:
    require(key, kb, "read")
    return DocumentList(data=kb_documents(kb, settings)[1])


@router.post("/{kb}/documents", response_model=UploadResults)
def upload_documents(kb: str, files: Annotated[list[UploadFile], File(description="一个或多个文件 (one or more files)")],
                     key: Caller, settings: Config, services: State) -> UploadResults:
    """Each file gets its own result; a refused file (too big, wrong content, archive bomb) is reported
    as failed with the reason, and the others still go in. A missing knowledge base needs admin."""
    require(key, kb, "write")
    try:
        kb_info(kb, settings)
    except KnowledgeBaseNotFound:
        require(key, kb, "admin")
    limit = settings.upload_max_mb * 1024 * 1024
    results = []
    for f in files:
        name = f.filename or "upload"
        data = f.file.read(limit + 1)  # never more than the limit in memory
        result = ingest_upload(kb, name, data, settings, content_type=f.content_type, services=services)  # refused: "failed"
        observe_ingest(kb, result)
        results.append(result)
    return UploadResults(data=results)


@router.delete("/{kb}/documents/{doc_id}", status_code=204)
def delete_document(kb: str, doc_id: str, key: Caller, settings: Config) -> None:
    require(key, kb, "write")
    doc = kb_document(kb, doc_id, settings)
    if not remove_document(kb, doc.source, settings):
        raise DocumentNotFound(kb, doc_id)


@router.post("/{kb}/documents/{doc_id}/reindex", response_model=IngestResult)
def reindex(kb: str, doc_id: str, key: Caller, settings: Config) -> IngestResult:
    require(key, kb, "write")
    result = reindex_document(kb, kb_document(kb, doc_id, settings).source, settings)
    observe_ingest(kb, result)
    return result
